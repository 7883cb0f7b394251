package fakeorg

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"orgsync/salesforce"
)

// Record is an Account as a map from canonical field name to value: string,
// float64 (double and currency fields), int (NumberOfEmployees), bool,
// time.Time (datetimes, UTC) or nil.
type Record map[string]any

// account is a stored Account. Deleted accounts stay (IsDeleted=true) so
// queryAll can return them.
type account struct {
	f       Record
	deleted bool
}

// recordInput is one record of a request body, decoded and type-checked.
type recordInput struct {
	values map[string]any // canonical field name → converted value (nil clears)
	id     string         // the Id key, if given
	hasID  bool
	parent *parentRef // "Parent": {"<ext field>": value}
}

// parentRef is a reference to the parent account by external ID.
type parentRef struct {
	field, value string
}

// writeOpts selects the variant of a write.
type writeOpts struct {
	single bool // a single-record call (message variants)
	faults bool // apply the lock fault rate
}

// txn collects undo steps so an allOrNone call can roll back.
type txn struct {
	undo    []func()
	pending []func() // change notes, run on commit (changes.go)
	// origin is the changeOrigin of the writes (changes.go); "" for writes
	// made outside the APIs.
	origin string
	// direct marks writes that cannot be rolled back: their changes are
	// reported at once, not on commit.
	direct bool
	// inComposite marks the writes of a composite subrequest: their
	// changes wait for the whole call (compositeRun.commit).
	inComposite bool
	// user is the user making the writes (users.go); "" is the
	// integration user, whose token every API call carries.
	user string
}

// directTxn is the transaction of writes that commit at once (a
// single-record call, a Bulk API row, Apex REST), made through an API
// whose changeOrigin is origin.
func directTxn(origin string) *txn { return &txn{origin: origin, direct: true} }

func (t *txn) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo = nil
	t.pending = nil
}

func jsonParserError(msg string) *Error {
	return newError("JSON_PARSER_ERROR", msg)
}

func errInvalidField(name string) *Error {
	return newError("INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type Account", name))
}

// parseRecord decodes a request record. Its errors (unknown field, value of
// the wrong JSON type) fail the whole request, as deserialization does in
// Salesforce.
func (o *Org) parseRecord(raw map[string]any) (*recordInput, *Error) {
	in := &recordInput{values: make(map[string]any, len(raw))}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		switch {
		case k == "attributes": // ignored, as Salesforce does
			continue
		case strings.EqualFold(k, "Parent"):
			if v == nil { // a null relationship references nothing, like an absent one
				continue
			}
			ref, err := o.parseParentRef(v)
			if err != nil {
				return nil, err
			}
			in.parent = ref
			continue
		case strings.EqualFold(k, "Id"):
			s, ok := v.(string)
			if !ok && v != nil {
				return nil, jsonParserError(deserializeMessage("id", v))
			}
			// A blank Id ("" or null) is no Id: Salesforce creates such a
			// record on every write path (the recorded collections upsert
			// sends "Id": null), and clients that map structs send "Id": "".
			if s != "" {
				in.id, in.hasID = s, true
			}
			continue
		}
		f, ok := o.schema.lookup(k)
		if !ok {
			return nil, errInvalidField(k)
		}
		cv, err := convertValue(f, v)
		if err != nil {
			return nil, err
		}
		in.values[f.Name] = cv
	}
	return in, nil
}

// parseParentRef reads "Parent": {"Source_Id__c": "v"} (an attributes key
// inside is ignored).
func (o *Org) parseParentRef(v any) (*parentRef, *Error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, jsonParserError(deserializeMessage("Account", v))
	}
	var ref *parentRef
	for k, val := range m {
		if k == "attributes" {
			continue
		}
		f, ok := o.schema.lookup(k)
		if !ok {
			return nil, newError("INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type Account", k))
		}
		if !f.ExternalID || ref != nil {
			return nil, newError("INVALID_FIELD", fmt.Sprintf("The field %s is not an External ID or indexed field for Account", f.Name))
		}
		s, err := convertValue(f, val)
		if err != nil {
			return nil, err
		}
		str, _ := s.(string)
		ref = &parentRef{field: f.Name, value: str}
	}
	if ref == nil {
		return nil, newError("INVALID_FIELD", "Foreign key external ID field is missing in entity Account")
	}
	return ref, nil
}

// jsonToken names a JSON value the way Salesforce's parser errors do.
func jsonToken(v any) string {
	switch x := v.(type) {
	case string:
		return "VALUE_STRING value " + x
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "VALUE_NUMBER_FLOAT value " + string(x)
		}
		return "VALUE_NUMBER_INT value " + string(x)
	case float64, int, int64:
		return fmt.Sprintf("VALUE_NUMBER value %v", x)
	case bool:
		if x {
			return "VALUE_TRUE value true"
		}
		return "VALUE_FALSE value false"
	case map[string]any:
		return "START_OBJECT value {"
	case []any:
		return "START_ARRAY value ["
	}
	return fmt.Sprintf("value %v", v)
}

func deserializeMessage(typ string, v any) string {
	return fmt.Sprintf("Cannot deserialize instance of %s from %s or request may be missing a required field", typ, jsonToken(v))
}

// convertValue converts a decoded JSON value (or a Go value from
// InsertAccount) to the stored type of f.
func convertValue(f *field, v any) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	bad := func() (any, *Error) { return nil, jsonParserError(deserializeMessage(f.Type, v)) }
	switch f.Type {
	case typeString, typeTextArea, typePhone, typeURL, typePicklist:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case json.Number:
			s = string(x)
		case bool:
			s = strconv.FormatBool(x)
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			s = strconv.Itoa(x)
		case int64:
			s = strconv.FormatInt(x, 10)
		default:
			return bad()
		}
		if s == "" { // Salesforce stores an empty text value as null
			return nil, nil
		}
		return s, nil
	case typeID, typeReference:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if s == "" {
			return nil, nil
		}
		return s, nil
	case typeDouble, typeCurrency:
		fl, ok := toFloat(v)
		if !ok {
			return bad()
		}
		return fl, nil
	case typeInt:
		fl, ok := toFloat(v)
		if !ok || fl != math.Trunc(fl) || math.Abs(fl) > math.MaxInt32 {
			return bad()
		}
		return int(fl), nil
	case typeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
		}
		return bad()
	case typeDateTime, typeDate:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano, time.DateOnly} {
				if t, err := time.Parse(layout, x); err == nil {
					return t.UTC(), nil
				}
			}
		}
		return bad()
	}
	return v, nil // compound address: never writable, rejected later
}

func toFloat(v any) (float64, bool) {
	var f float64
	var err error
	switch x := v.(type) {
	case json.Number:
		f, err = strconv.ParseFloat(string(x), 64)
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	default:
		return 0, false
	}
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// isBlank reports whether a Name value counts as missing.
func isBlank(v any) bool {
	s, ok := v.(string)
	return !ok || strings.TrimSpace(s) == ""
}

// prepare validates in as a create (existing == nil) or as an update of
// existing (self is its ID) and returns the merged field values. The
// caller holds o.mu.
func (o *Org) prepare(in *recordInput, existing Record, self string, opts writeOpts) (Record, *Error) {
	create := existing == nil
	if create && in.hasID {
		if opts.single {
			return nil, newError("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
		}
		return nil, fieldsError("INVALID_FIELD", "cannot specify Id in an insert call", nil)
	}
	var readOnly []string
	for _, f := range o.schema.fields {
		if _, ok := in.values[f.Name]; !ok {
			continue
		}
		if create && !f.Createable || !create && !f.Updateable {
			readOnly = append(readOnly, f.Name)
		}
	}
	if len(readOnly) > 0 {
		return nil, newError("INVALID_FIELD_FOR_INSERT_UPDATE", fmt.Sprintf(
			"Unable to create/update fields: %s. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
			strings.Join(readOnly, ", ")), readOnly...)
	}
	merged := make(Record, len(existing)+len(in.values))
	maps.Copy(merged, existing)
	maps.Copy(merged, in.values)
	if in.parent != nil {
		ids := o.lookupExternal(in.parent.value)
		switch len(ids) {
		case 0:
			return nil, fieldsError("INVALID_FIELD", fmt.Sprintf(
				"Foreign key external ID: %s not found for field %s in entity Account", in.parent.value, in.parent.field), nil)
		case 1:
			merged["ParentId"] = ids[0]
		default:
			return nil, fieldsError("INVALID_FIELD", fmt.Sprintf(
				"Foreign key external ID: %s matches more than one record for field %s in entity Account", in.parent.value, in.parent.field), nil)
		}
	}
	if isBlank(merged["Name"]) {
		return nil, newError("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", "Name")
	}
	for i := range o.schema.fields {
		f := &o.schema.fields[i]
		v, ok := in.values[f.Name]
		if !ok || v == nil {
			continue
		}
		switch {
		case f.isText():
			if s := v.(string); utf8.RuneCountInString(s) > f.Length {
				return nil, newError("STRING_TOO_LONG", fmt.Sprintf("%s: data value too large: %s (max length=%d)", f.Label, s, f.Length), f.Name)
			}
		case f.Type == typeInt && f.Digits > 0:
			if n := v.(int); math.Abs(float64(n)) >= math.Pow10(f.Digits) {
				return nil, newError("NUMBER_OUTSIDE_VALID_RANGE", fmt.Sprintf("%s: value outside of valid range on numeric field: %d", f.Label, n), f.Name)
			}
		case f.Type == typeCurrency || f.Type == typeDouble:
			if n := v.(float64); math.Abs(n) >= math.Pow10(f.Precision-f.Scale) {
				return nil, newError("NUMBER_OUTSIDE_VALID_RANGE", fmt.Sprintf("%s: value outside of valid range on numeric field: %v", f.Label, n), f.Name)
			}
		}
	}
	if err := o.checkReferences(in, merged, self); err != nil {
		return nil, err
	}
	if re := o.live.rejectRE; re != nil && re.MatchString(merged["Name"].(string)) {
		return nil, fieldsError("FIELD_CUSTOM_VALIDATION_EXCEPTION",
			fmt.Sprintf("Account Name is not allowed (validation rule Reject_Account_Name: %s)", o.live.rejectName), nil)
	}
	if opts.faults && o.live.lockRate > 0 && o.rnd.Float64() < o.live.lockRate {
		return nil, fieldsError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records", nil)
	}
	if o.schema.extIDUnique {
		if s, ok := merged[o.schema.extID.Name].(string); ok {
			for _, id := range o.lookupExternal(s) {
				if id != self {
					// Salesforce names the other record by its 15-character
					// ID (testdata/recorded/duplicate_value.json).
					return nil, fieldsError("DUPLICATE_VALUE", fmt.Sprintf(
						"duplicate value found: %s duplicates value on record with id: %s", o.schema.extID.Name, id[:15]), nil)
				}
			}
		}
	}
	return merged, nil
}

// checkReferences validates and normalises ParentId and OwnerId.
func (o *Org) checkReferences(in *recordInput, merged Record, self string) *Error {
	if _, set := in.values["ParentId"]; set || in.parent != nil {
		if v, ok := merged["ParentId"].(string); ok {
			id, err := salesforce.NormalizeIDWithPrefix(v, salesforce.PrefixAccount)
			if err != nil {
				return newError("MALFORMED_ID", "Parent Account ID: id value of incorrect type: "+v, "ParentId")
			}
			if a, ok := o.accounts[id]; !ok || a.deleted {
				return fieldsError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", nil)
			}
			if id == self {
				return newError("CIRCULAR_DEPENDENCY", "Cannot set this record as its own parent", "ParentId")
			}
			merged["ParentId"] = id
		}
	}
	if _, set := in.values["OwnerId"]; set {
		v, ok := merged["OwnerId"].(string)
		if !ok {
			return newError("REQUIRED_FIELD_MISSING", "Required fields are missing: [OwnerId]", "OwnerId")
		}
		id, err := salesforce.NormalizeIDWithPrefix(v, salesforce.PrefixUser)
		if err != nil {
			return newError("MALFORMED_ID", "Owner ID: id value of incorrect type: "+v, "OwnerId")
		}
		if id != o.userID {
			return fieldsError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", nil)
		}
		merged["OwnerId"] = id
	}
	return nil
}

// lookupExternal returns the live accounts whose external ID equals value,
// ignoring case. The caller holds o.mu.
func (o *Org) lookupExternal(value string) []string {
	return o.extIndex[strings.ToLower(value)]
}

func (o *Org) indexAdd(id string, f Record) {
	if s, ok := f[o.schema.extID.Name].(string); ok {
		k := strings.ToLower(s)
		o.extIndex[k] = append(o.extIndex[k], id)
	}
}

func (o *Org) indexRemove(id string, f Record) {
	s, ok := f[o.schema.extID.Name].(string)
	if !ok {
		return
	}
	k := strings.ToLower(s)
	ids := o.extIndex[k]
	for i, x := range ids {
		if x == id {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(o.extIndex, k)
	} else {
		o.extIndex[k] = ids
	}
}

// commitCreate stores a validated new account and returns its ID.
func (o *Org) commitCreate(merged Record, createdAt time.Time, tx *txn) string {
	id := o.ids.next(salesforce.PrefixAccount)
	now := o.nowUTC()
	if createdAt.IsZero() {
		createdAt = now
	}
	createdAt = createdAt.UTC().Truncate(time.Millisecond)
	merged["Id"] = id
	merged["IsDeleted"] = false
	merged["CreatedDate"] = createdAt
	o.stampModified(merged, createdAt, tx)
	merged["CreatedById"] = merged["LastModifiedById"]
	if merged["OwnerId"] == nil {
		merged["OwnerId"] = o.userID
	}
	o.accounts[id] = &account{f: merged}
	o.order = append(o.order, id)
	o.indexAdd(id, merged)
	o.noteChange(tx, ChangeCreate, nil, merged)
	if tx != nil && !tx.direct {
		tx.undo = append(tx.undo, func() {
			o.indexRemove(id, merged)
			delete(o.accounts, id)
			if n := len(o.order); n > 0 && o.order[n-1] == id {
				o.order = o.order[:n-1]
			}
		})
	}
	return id
}

// commitUpdate replaces a live account's fields with merged.
func (o *Org) commitUpdate(a *account, merged Record, tx *txn) {
	old := a.f
	o.stampModified(merged, o.nowUTC(), tx)
	o.indexRemove(old["Id"].(string), old)
	a.f = merged
	o.indexAdd(merged["Id"].(string), merged)
	o.noteChange(tx, ChangeUpdate, old, merged)
	if tx != nil && !tx.direct {
		tx.undo = append(tx.undo, func() {
			o.indexRemove(merged["Id"].(string), merged)
			a.f = old
			o.indexAdd(old["Id"].(string), old)
		})
	}
}

// findAccount resolves a 15- or 18-character account ID. A malformed one is
// MALFORMED_ID worded as for an ID in the URL path ("Record ID: …",
// testdata/recorded/malformed_id.json); recordErr rewords it for an Id in
// a record. The caller holds o.mu.
func (o *Org) findAccount(raw string) (*account, *Error) {
	id, err := salesforce.NormalizeIDWithPrefix(raw, salesforce.PrefixAccount)
	if err != nil {
		return nil, newError("MALFORMED_ID", "Record ID: id value of incorrect type: "+raw, "Id")
	}
	a, ok := o.accounts[id]
	if !ok {
		return nil, errNotFound()
	}
	if a.deleted {
		return a, fieldsError("ENTITY_IS_DELETED", "entity is deleted", nil)
	}
	return a, nil
}

// softDelete moves a live account to the recycle bin.
func (o *Org) softDelete(a *account, tx *txn, faults bool) *Error {
	if faults && o.live.lockRate > 0 && o.rnd.Float64() < o.live.lockRate {
		return fieldsError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records", nil)
	}
	old := a.f
	f := maps.Clone(old)
	f["IsDeleted"] = true
	o.stampModified(f, o.nowUTC(), tx)
	o.indexRemove(old["Id"].(string), old)
	a.f, a.deleted = f, true
	o.noteChange(tx, ChangeDelete, old, f)
	if tx != nil && !tx.direct {
		tx.undo = append(tx.undo, func() {
			a.f, a.deleted = old, false
			o.indexAdd(old["Id"].(string), old)
		})
	}
	return nil
}

// render builds a record as the REST API returns it: attributes, then the
// given fields (all fields when names is nil) in order.
func (o *Org) render(a *account, names []string, version string) *orderedObject {
	id := a.f["Id"].(string)
	if names == nil {
		names = make([]string, len(o.schema.fields))
		for i, f := range o.schema.fields {
			names[i] = f.Name
		}
	}
	out := newOrderedObject(len(names) + 1)
	out.set("attributes", map[string]string{"type": "Account", "url": "/services/data/v" + version + "/sobjects/Account/" + id})
	for _, n := range names {
		out.set(n, o.fieldValue(a.f, n))
	}
	return out
}

// fieldValue renders one field for JSON output.
func (o *Org) fieldValue(f Record, name string) any {
	if prefix, ok := addressParts[name]; ok {
		addr := map[string]any{
			"street": f[prefix+"Street"], "city": f[prefix+"City"], "state": f[prefix+"State"],
			"postalCode": f[prefix+"PostalCode"], "country": f[prefix+"Country"],
			"latitude": f[prefix+"Latitude"], "longitude": f[prefix+"Longitude"],
			"geocodeAccuracy": f[prefix+"GeocodeAccuracy"],
		}
		for _, v := range addr {
			if v != nil {
				return addr
			}
		}
		return nil
	}
	if name == "PhotoUrl" { // computed: the record's image path, as in recorded answers
		if id, ok := f["Id"].(string); ok {
			return "/services/images/photo/" + id
		}
	}
	switch v := f[name].(type) {
	case time.Time:
		if fd, ok := o.schema.lookup(name); ok && fd.Type == typeDate {
			return sfDate(v)
		}
		return sfTime(v)
	case nil:
		return nil
	default:
		return v
	}
}

// Accounts returns a snapshot copy of the live (not deleted) accounts in
// creation order.
func (o *Org) Accounts() []Record {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Record, 0, len(o.order))
	for _, id := range o.order {
		if a := o.accounts[id]; !a.deleted {
			out = append(out, maps.Clone(a.f))
		}
	}
	return out
}

// Account returns a copy of the live account with the given 15- or
// 18-character ID.
func (o *Org) Account(id string) (Record, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	a, err := o.findAccount(id)
	if err != nil {
		return nil, false
	}
	return maps.Clone(a.f), true
}

// InsertAccount stores an account directly, for seeding an org: no API
// accounting, no faults, but the same validation as a REST create (a
// failure is an *Error). A zero createdAt means now. Values may be strings,
// numbers, bools or nil; "Parent" may reference the parent by external ID.
func (o *Org) InsertAccount(fields Record, createdAt time.Time) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	in, perr := o.parseRecord(fields)
	if perr != nil {
		return "", perr
	}
	merged, verr := o.prepare(in, nil, "", writeOpts{single: true})
	if verr != nil {
		return "", verr
	}
	return o.commitCreate(merged, createdAt, nil), nil
}
