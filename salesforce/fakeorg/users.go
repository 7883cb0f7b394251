package fakeorg

import (
	"time"

	"orgsync/salesforce"
)

// stampModified sets what Salesforce maintains on every write of a record:
// LastModifiedDate and SystemModstamp (now), and LastModifiedById, the user
// making the write: the integration user, whose token every API call
// carries, unless tx names another (UpdateAccountAs).
func (o *Org) stampModified(f Record, now time.Time, tx *txn) {
	f["LastModifiedDate"] = now
	f["SystemModstamp"] = now
	f["LastModifiedById"] = o.userID
	if tx != nil && tx.user != "" {
		f["LastModifiedById"] = tx.user
	}
}

// UpdateAccountAs changes a live account as userID (a 15- or 18-character
// User ID) would in the org's user interface: the same validation as a
// REST update, no API accounting, no faults; the account's LastModifiedById
// becomes userID and the change is reported without a changeOrigin. A
// failure is an *Error (ENTITY_IS_DELETED for a deleted account).
func (o *Org) UpdateAccountAs(userID, id string, fields Record) error {
	user, err := salesforce.NormalizeIDWithPrefix(userID, salesforce.PrefixUser)
	if err != nil {
		return newError("MALFORMED_ID", "User ID: id value of incorrect type: "+userID, "LastModifiedById")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	in, perr := o.parseRecord(fields)
	if perr != nil {
		return perr
	}
	tx := directTxn("")
	tx.user = user
	if err := o.updateLocked(id, in, writeOpts{single: true}, tx); err != nil {
		return err
	}
	return nil
}
