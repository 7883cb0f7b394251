package fakeorg

import (
	"net/http"
	"strings"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg/internal/soql"
)

// Salesforce field types the fake models.
const (
	typeID        = "id"
	typeString    = "string"
	typeTextArea  = "textarea"
	typePhone     = "phone"
	typeURL       = "url"
	typePicklist  = "picklist"
	typeReference = "reference"
	typeBoolean   = "boolean"
	typeDateTime  = "datetime"
	typeDate      = "date"
	typeDouble    = "double"
	typeCurrency  = "currency"
	typeInt       = "int"
	typeAddress   = "address"
)

// field describes one Account field.
type field struct {
	Name, Label string
	Type        string
	Length      int // text fields: maximum characters
	Precision   int // double/currency
	Scale       int
	Digits      int // int
	Createable  bool
	Updateable  bool
	Nillable    bool
	ReferenceTo string // "Account" or "User"
	Relation    string // relationship name, e.g. "Parent"
	ExternalID  bool
	Custom      bool
	NameField   bool
	// ExtraTypeInfo refines the type in describe ("imageurl"…); textarea
	// fields get "plaintextarea".
	ExtraTypeInfo string
}

// isText reports whether values of f are strings with a length limit.
func (f *field) isText() bool {
	switch f.Type {
	case typeString, typeTextArea, typePhone, typeURL, typePicklist:
		return true
	}
	return false
}

// kind maps f to the SOQL parser's comparison kind.
func (f *field) kind() soql.FieldKind {
	switch f.Type {
	case typeID, typeReference:
		return soql.KindID
	case typeDouble, typeCurrency, typeInt:
		return soql.KindNumber
	case typeBoolean:
		return soql.KindBool
	case typeDateTime:
		return soql.KindDateTime
	case typeDate:
		return soql.KindDate
	}
	return soql.KindString
}

// soapType is the XML schema type describe reports for f.
func (f *field) soapType() string {
	switch f.Type {
	case typeID, typeReference:
		return "tns:ID"
	case typeBoolean:
		return "xsd:boolean"
	case typeDateTime:
		return "xsd:dateTime"
	case typeDate:
		return "xsd:date"
	case typeDouble, typeCurrency:
		return "xsd:double"
	case typeInt:
		return "xsd:int"
	case typeAddress:
		return "urn:address"
	}
	return "xsd:string"
}

// standardAccountFields lists the standard Account fields in describe order.
// Lengths follow a recent API version's describe.
var standardAccountFields = []field{
	{Name: "Id", Label: "Account ID", Type: typeID, Length: 18},
	{Name: "IsDeleted", Label: "Deleted", Type: typeBoolean},
	{Name: "MasterRecordId", Label: "Master Record ID", Type: typeReference, Length: 18, Nillable: true, ReferenceTo: "Account", Relation: "MasterRecord"},
	{Name: "Name", Label: "Account Name", Type: typeString, Length: 255, Createable: true, Updateable: true, NameField: true, ExtraTypeInfo: "switchablepersonname"},
	{Name: "Type", Label: "Account Type", Type: typePicklist, Length: 255, Createable: true, Updateable: true, Nillable: true},
	{Name: "ParentId", Label: "Parent Account ID", Type: typeReference, Length: 18, Createable: true, Updateable: true, Nillable: true, ReferenceTo: "Account", Relation: "Parent"},
	{Name: "BillingStreet", Label: "Billing Street", Type: typeTextArea, Length: 255, Createable: true, Updateable: true, Nillable: true},
	{Name: "BillingCity", Label: "Billing City", Type: typeString, Length: 40, Createable: true, Updateable: true, Nillable: true},
	{Name: "BillingState", Label: "Billing State/Province", Type: typeString, Length: 80, Createable: true, Updateable: true, Nillable: true},
	{Name: "BillingPostalCode", Label: "Billing Zip/Postal Code", Type: typeString, Length: 20, Createable: true, Updateable: true, Nillable: true},
	{Name: "BillingCountry", Label: "Billing Country", Type: typeString, Length: 80, Createable: true, Updateable: true, Nillable: true},
	{Name: "BillingLatitude", Label: "Billing Latitude", Type: typeDouble, Precision: 18, Scale: 15, Createable: true, Updateable: true, Nillable: true},
	{Name: "BillingLongitude", Label: "Billing Longitude", Type: typeDouble, Precision: 18, Scale: 15, Createable: true, Updateable: true, Nillable: true},
	{Name: "BillingGeocodeAccuracy", Label: "Billing Geocode Accuracy", Type: typePicklist, Length: 40, Createable: true, Updateable: true, Nillable: true},
	{Name: "BillingAddress", Label: "Billing Address", Type: typeAddress, Nillable: true},
	{Name: "ShippingStreet", Label: "Shipping Street", Type: typeTextArea, Length: 255, Createable: true, Updateable: true, Nillable: true},
	{Name: "ShippingCity", Label: "Shipping City", Type: typeString, Length: 40, Createable: true, Updateable: true, Nillable: true},
	{Name: "ShippingState", Label: "Shipping State/Province", Type: typeString, Length: 80, Createable: true, Updateable: true, Nillable: true},
	{Name: "ShippingPostalCode", Label: "Shipping Zip/Postal Code", Type: typeString, Length: 20, Createable: true, Updateable: true, Nillable: true},
	{Name: "ShippingCountry", Label: "Shipping Country", Type: typeString, Length: 80, Createable: true, Updateable: true, Nillable: true},
	{Name: "ShippingLatitude", Label: "Shipping Latitude", Type: typeDouble, Precision: 18, Scale: 15, Createable: true, Updateable: true, Nillable: true},
	{Name: "ShippingLongitude", Label: "Shipping Longitude", Type: typeDouble, Precision: 18, Scale: 15, Createable: true, Updateable: true, Nillable: true},
	{Name: "ShippingGeocodeAccuracy", Label: "Shipping Geocode Accuracy", Type: typePicklist, Length: 40, Createable: true, Updateable: true, Nillable: true},
	{Name: "ShippingAddress", Label: "Shipping Address", Type: typeAddress, Nillable: true},
	{Name: "Phone", Label: "Account Phone", Type: typePhone, Length: 40, Createable: true, Updateable: true, Nillable: true},
	{Name: "Fax", Label: "Account Fax", Type: typePhone, Length: 40, Createable: true, Updateable: true, Nillable: true},
	{Name: "AccountNumber", Label: "Account Number", Type: typeString, Length: 40, Createable: true, Updateable: true, Nillable: true},
	{Name: "Website", Label: "Website", Type: typeURL, Length: 255, Createable: true, Updateable: true, Nillable: true},
	{Name: "PhotoUrl", Label: "Photo URL", Type: typeURL, Length: 255, Nillable: true, ExtraTypeInfo: "imageurl"},
	{Name: "Sic", Label: "SIC Code", Type: typeString, Length: 20, Createable: true, Updateable: true, Nillable: true},
	{Name: "Industry", Label: "Industry", Type: typePicklist, Length: 255, Createable: true, Updateable: true, Nillable: true},
	{Name: "AnnualRevenue", Label: "Annual Revenue", Type: typeCurrency, Precision: 18, Createable: true, Updateable: true, Nillable: true},
	{Name: "NumberOfEmployees", Label: "Employees", Type: typeInt, Digits: 8, Createable: true, Updateable: true, Nillable: true},
	{Name: "Ownership", Label: "Ownership", Type: typePicklist, Length: 255, Createable: true, Updateable: true, Nillable: true},
	{Name: "TickerSymbol", Label: "Ticker Symbol", Type: typeString, Length: 20, Createable: true, Updateable: true, Nillable: true},
	{Name: "Description", Label: "Account Description", Type: typeTextArea, Length: 32000, Createable: true, Updateable: true, Nillable: true},
	{Name: "Rating", Label: "Account Rating", Type: typePicklist, Length: 255, Createable: true, Updateable: true, Nillable: true},
	{Name: "Site", Label: "Account Site", Type: typeString, Length: 80, Createable: true, Updateable: true, Nillable: true},
	{Name: "OwnerId", Label: "Owner ID", Type: typeReference, Length: 18, Createable: true, Updateable: true, ReferenceTo: "User", Relation: "Owner"},
	{Name: "CreatedDate", Label: "Created Date", Type: typeDateTime},
	{Name: "CreatedById", Label: "Created By ID", Type: typeReference, Length: 18, ReferenceTo: "User", Relation: "CreatedBy"},
	{Name: "LastModifiedDate", Label: "Last Modified Date", Type: typeDateTime},
	{Name: "LastModifiedById", Label: "Last Modified By ID", Type: typeReference, Length: 18, ReferenceTo: "User", Relation: "LastModifiedBy"},
	{Name: "SystemModstamp", Label: "System Modstamp", Type: typeDateTime},
	{Name: "LastActivityDate", Label: "Last Activity", Type: typeDate, Nillable: true},
	{Name: "LastViewedDate", Label: "Last Viewed Date", Type: typeDateTime, Nillable: true},
	{Name: "LastReferencedDate", Label: "Last Referenced Date", Type: typeDateTime, Nillable: true},
	{Name: "Jigsaw", Label: "Data.com Key", Type: typeString, Length: 20, Createable: true, Updateable: true, Nillable: true},
	{Name: "JigsawCompanyId", Label: "Jigsaw Company ID", Type: typeString, Length: 20, Nillable: true, Relation: "JigsawCompany"},
	{Name: "AccountSource", Label: "Account Source", Type: typePicklist, Length: 255, Createable: true, Updateable: true, Nillable: true},
	{Name: "SicDesc", Label: "SIC Description", Type: typeString, Length: 80, Createable: true, Updateable: true, Nillable: true},
}

// addressParts maps a compound address field to its component prefix.
var addressParts = map[string]string{"BillingAddress": "Billing", "ShippingAddress": "Shipping"}

// schema is the Account field table of one org: the standard fields plus the
// configured external ID field. It is immutable after construction.
type schema struct {
	fields      []field
	byLower     map[string]*field // lower-case name → field
	extID       *field
	extIDUnique bool
}

func newSchema(extIDField string, extIDUnique bool) *schema {
	s := &schema{fields: append([]field(nil), standardAccountFields...)}
	s.fields = append(s.fields, field{
		Name: extIDField, Label: customLabel(extIDField), Type: typeString, Length: 255,
		Createable: true, Updateable: true, Nillable: true, ExternalID: true, Custom: true,
	})
	s.byLower = make(map[string]*field, len(s.fields))
	for i := range s.fields {
		s.byLower[strings.ToLower(s.fields[i].Name)] = &s.fields[i]
	}
	s.extID = &s.fields[len(s.fields)-1]
	s.extIDUnique = extIDUnique
	return s
}

// lookup finds a field by name, ignoring case as Salesforce does.
func (s *schema) lookup(name string) (*field, bool) {
	f, ok := s.byLower[strings.ToLower(name)]
	return f, ok
}

// soqlLookup adapts lookup to soql.Query.Resolve.
func (s *schema) soqlLookup(name string) (string, soql.FieldKind, bool) {
	f, ok := s.lookup(name)
	if !ok {
		return "", 0, false
	}
	return f.Name, f.kind(), true
}

// customLabel derives a label from a custom field's API name:
// "Source_Id__c" → "Source Id".
func customLabel(name string) string {
	return strings.ReplaceAll(strings.TrimSuffix(name, "__c"), "_", " ")
}

// handleDescribe answers GET /sobjects/Account/describe with the keys and
// field attributes of a recorded v59.0 describe (testdata/recorded).
func (o *Org) handleDescribe(w http.ResponseWriter, r *http.Request, c *call) {
	fields := make([]map[string]any, 0, len(o.schema.fields))
	for i := range o.schema.fields {
		fields = append(fields, o.schema.describeField(&o.schema.fields[i]))
	}
	base := "/services/data/v" + c.version + "/sobjects/Account"
	out := map[string]any{
		"name": "Account", "label": "Account", "labelPlural": "Accounts", "keyPrefix": salesforce.PrefixAccount,
		"custom": false, "createable": true, "updateable": true, "deletable": true, "undeletable": true,
		"queryable": true, "retrieveable": true, "searchable": true, "replicateable": true, "triggerable": true,
		"layoutable": true, "mergeable": true, "feedEnabled": true, "activateable": false, "customSetting": false,
		"deprecatedAndHidden": false, "mruEnabled": true, "compactLayoutable": true, "searchLayoutable": true,
		"deepCloneable": false, "hasSubtypes": false, "isInterface": false, "isSubtype": false,
		"defaultImplementation": nil, "extendedBy": nil,
		"extendsInterfaces": nil, "implementedBy": nil, "implementsInterfaces": nil, "listviewable": nil,
		"lookupLayoutable": nil, "networkScopeFieldName": nil,
		"actionOverrides":    []any{},
		"namedLayoutInfos":   []any{},
		"fields":             fields,
		"childRelationships": []any{},
		"recordTypeInfos":    []any{},
		"supportedScopes":    []map[string]string{{"label": "All accounts", "name": "everything"}, {"label": "My accounts", "name": "mine"}},
		"urls": map[string]string{
			"sobject": base, "describe": base + "/describe", "rowTemplate": base + "/{ID}",
			"compactLayouts": base + "/describe/compactLayouts", "approvalLayouts": base + "/describe/approvalLayouts",
			"layouts": base + "/describe/layouts", "listviews": base + "/listviews", "quickActions": base + "/quickActions",
			"uiDetailTemplate": c.base + "/{ID}", "uiEditTemplate": c.base + "/{ID}/e", "uiNewRecord": c.base + "/001/e",
		},
	}
	// Keys the v59.0 recording has and the v48.0 one lacks, and the other
	// way round; the fake switches at v49.0.
	if c.major >= 49 {
		out["associateEntityType"], out["associateParentEntity"], out["sobjectDescribeOption"] = nil, nil, "FULL"
	} else {
		out["urls"].(map[string]string)["defaultValues"] = base + "/defaultValues?recordTypeId&fields"
	}
	writeJSON(w, http.StatusOK, out)
}

// describeField renders one entry of describe's "fields" array; the rules
// reproduce the attributes of the recorded standard fields.
func (s *schema) describeField(f *field) map[string]any {
	length, byteLength := 0, 0
	switch {
	case f.isText():
		length, byteLength = f.Length, f.Length*3
	case f.Type == typeID || f.Type == typeReference:
		length, byteLength = f.Length, f.Length
	}
	unique := f.ExternalID && s.extIDUnique
	refTo := []string{}
	if f.ReferenceTo != "" {
		refTo = []string{f.ReferenceTo}
	}
	var rel, extra, def any
	if f.Relation != "" {
		rel = f.Relation
	}
	switch {
	case f.ExtraTypeInfo != "":
		extra = f.ExtraTypeInfo
	case f.Type == typeTextArea:
		extra = "plaintextarea"
	}
	if f.Type == typeBoolean {
		def = false
	}
	longText := f.Type == typeTextArea && f.Length > 255
	filterable := !longText
	return map[string]any{
		"name": f.Name, "label": f.Label, "type": f.Type, "soapType": f.soapType(), "extraTypeInfo": extra,
		"length": length, "byteLength": byteLength, "precision": f.Precision, "scale": f.Scale, "digits": f.Digits,
		"createable": f.Createable, "updateable": f.Updateable, "nillable": f.Nillable,
		"defaultedOnCreate": !f.Nillable && !f.NameField, "custom": f.Custom, "calculated": false, "autoNumber": false,
		"externalId": f.ExternalID, "unique": unique, "caseSensitive": false, "idLookup": f.Type == typeID || f.ExternalID,
		"nameField": f.NameField, "filterable": filterable, "sortable": filterable && f.Type != typeAddress,
		"groupable":    filterable && f.Type != typeDouble && f.Type != typeCurrency && f.Type != typeDateTime && f.Type != typeAddress,
		"aggregatable": filterable && f.Type != typeBoolean && f.Type != typeAddress,
		"referenceTo":  refTo, "relationshipName": rel, "relationshipOrder": nil, "referenceTargetField": nil,
		"picklistValues": []any{}, "restrictedPicklist": strings.HasSuffix(f.Name, "GeocodeAccuracy"),
		"htmlFormatted": false, "dependentPicklist": false, "controllerName": nil, "deprecatedAndHidden": false,
		"permissionable":    f.Nillable && (f.Createable || f.Type == typeAddress),
		"compoundFieldName": compoundOf(f.Name), "polymorphicForeignKey": false, "cascadeDelete": false,
		"restrictedDelete": false, "writeRequiresMasterRead": false, "namePointing": false, "encrypted": false,
		"inlineHelpText": nil, "defaultValue": def, "defaultValueFormula": nil, "calculatedFormula": nil,
		"aiPredictionField": false, "displayLocationInDecimal": false, "filteredLookupInfo": nil,
		"formulaTreatNullNumberAsZero": false, "highScaleNumber": false, "mask": nil, "maskType": nil,
		"queryByDistance":     f.Type == typeAddress,
		"searchPrefilterable": f.Type == typeReference && f.Createable && f.ReferenceTo == "Account",
	}
}

// compoundOf returns the compound field a component belongs to, or nil.
// Name is its own compound, as in the recorded describes.
func compoundOf(name string) any {
	if name == "Name" {
		return "Name"
	}
	for compound, prefix := range addressParts {
		if name != compound && strings.HasPrefix(name, prefix) {
			return compound
		}
	}
	return nil
}
