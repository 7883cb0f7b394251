package replicate

import (
	"errors"
	"fmt"

	"orgsync/salesforce"
)

// This file is the engine's whole failure table (the README's "Failure
// classes"): every failed call and every failed record is given a class,
// and the class decides the action. Nothing else in the engine branches on
// an error.

// class is what a failure means for orgsync.
type class int

const (
	classNone class = iota
	// classTransient: network trouble, 5xx, lock contention, an upsert race.
	classTransient
	// classAuth: this worker's credentials are refused (a new token did not
	// help). Local to the worker: other workers may hold good ones.
	classAuth
	// classUnreachable: a whole call got no answer even after the in-process
	// retries. Local to the worker: its own network path may be broken.
	classUnreachable
	// classBudget: the org's daily API budget is used up. Belongs to the org.
	classBudget
	// classConfig: the org is not set up for orgsync (external ID field,
	// Bulk job refused, redirect). Belongs to the org.
	classConfig
	// classPermanent: this record will fail the same way again.
	classPermanent
	// classParentMissing: the record's parent is not in the target yet.
	classParentMissing
)

func (c class) String() string {
	return [...]string{"none", "transient", "auth", "unreachable", "budget", "configuration", "permanent", "parent missing"}[c]
}

// classOf maps an error to its class. The salesforce package owns what a
// Salesforce answer means; the engine adds its own budget check.
func classOf(err error) class {
	if err == nil {
		return classNone
	}
	if errors.Is(err, errOverBudget) {
		return classBudget
	}
	if _, _, ok := salesforce.MissingParent(err); ok {
		return classParentMissing
	}
	switch salesforce.Classify(err) {
	case salesforce.AuthFailure:
		return classAuth
	case salesforce.Budget:
		return classBudget
	case salesforce.Configuration:
		return classConfig
	case salesforce.Permanent:
		return classPermanent
	}
	return classTransient
}

// action is what the engine does with a record's messages.
type action int

const (
	// actAck: the record is in the target: record the ID pair, then ack.
	actAck action = iota
	// actRetryLater: nak with a delay that grows with the deliveries.
	actRetryLater
	// actDeadLetter: publish to the DLQ with the code and message, then term.
	actDeadLetter
	// actHold: pause the whole pool with the cause and hold the messages
	// (InProgress, no nak, so no delivery is used) until the pool resumes,
	// then write them again.
	actHold
	// actHandBack: stop this worker (not ready, no fetching) until its
	// probe passes, and hand the messages back at once for other workers.
	actHandBack
	// actLinkLater: write the record without its parent now and publish a
	// link event that sets the parent once it is in the target.
	actLinkLater
)

func (a action) String() string {
	return [...]string{"ack", "retry later", "dead-letter", "hold and pause the pool", "hand back and stop this worker", "link later"}[a]
}

// decide is the table: the action for a record whose write ended in class
// c, after delivered deliveries of its message, with -max-deliver max.
// isLink is a link event (its record exists; only the parent is set).
func decide(c class, delivered, max int, isLink bool) action {
	switch c {
	case classNone:
		return actAck
	case classAuth, classUnreachable:
		return actHandBack
	case classBudget, classConfig:
		return actHold
	case classPermanent:
		return actDeadLetter
	case classParentMissing:
		if !isLink {
			return actLinkLater
		}
		fallthrough // a link waits for its parent like a transient failure
	default: // transient
		if pastMaxDeliver(delivered, max) {
			return actDeadLetter
		}
		return actRetryLater
	}
}

// pastMaxDeliver is the one max-deliver rule: a message that failed on its
// max-th delivery is not retried again. (A message received with more
// deliveries than max, e.g. one that crashed a worker every time, is
// dead-lettered as MAX_DELIVERIES before any write: see receivedTooOften.)
func pastMaxDeliver(delivered, max int) bool { return delivered >= max }

// receivedTooOften is the same rule at receipt.
func receivedTooOften(delivered, max int) bool { return delivered > max }

// callAction is what the engine does when a whole target call failed (after
// the in-process retries of a transient failure, see callWithRetry).
type callAction int

const (
	// callPerRecord: treat the failure as every record's own (transient:
	// retry later or dead-letter at the limit).
	callPerRecord callAction = iota
	// callSplit: the request was refused as a whole for a reason one record
	// may cause: write each half on its own (collections calls only).
	callSplit
	// callFallBack: a Bulk job failed or was refused as a whole: write its
	// records with collections calls instead (never split a Bulk job).
	callFallBack
	// callHold and callHandBack: as actHold and actHandBack, for every record.
	callHold
	callHandBack
)

// decideCall is the table for a whole call that failed with class c.
// records is how many records the call carried; bulk says it was a Bulk job.
func decideCall(c class, records int, bulk bool) callAction {
	switch c {
	case classAuth, classUnreachable:
		return callHandBack
	case classBudget, classConfig:
		return callHold
	case classPermanent, classParentMissing:
		switch {
		case bulk:
			return callFallBack
		case records > 1:
			return callSplit
		}
		return callPerRecord
	}
	if bulk {
		return callFallBack // a job that failed as a whole, or its results lost
	}
	return callPerRecord
}

// outcome is what happened to one group's record.
type outcome struct {
	targetID string
	err      error // nil when written
	class    class
	code     string
	message  string
	// parentDeferred: written without its parent, which the target does
	// not have yet; a link event must follow.
	parentDeferred bool
}

func ok(targetID string) outcome { return outcome{targetID: targetID} }

// written is the outcome of a record written without its parent.
func writtenWithoutParent(targetID string) outcome {
	return outcome{targetID: targetID, parentDeferred: true}
}

// failure turns an error into an outcome with its class, code and message.
func failure(err error) outcome {
	o := outcome{err: err, class: classOf(err), message: err.Error()}
	var re *salesforce.RecordError
	var ae *salesforce.APIError
	switch {
	case errors.As(err, &re):
		o.code, o.message = re.Code, re.Message
	case errors.As(err, &ae):
		o.code, o.message = ae.Code, ae.Message
		if o.code == "" {
			o.code = fmt.Sprintf("HTTP_%d", ae.StatusCode)
		}
	}
	if o.code == "" {
		switch o.class {
		case classTransient, classUnreachable:
			o.code = "TRANSIENT_ERROR"
		default:
			o.code = "ERROR"
		}
	}
	return o
}

// recordFailure is failure for a per-record error of an upsert by
// extIDField: a DUPLICATE_VALUE on that field is a race between two
// upserts of one key (transient), on any other field permanent.
func recordFailure(re *salesforce.RecordError, extIDField string) outcome {
	o := failure(re)
	if _, _, missing := salesforce.MissingParent(re); missing {
		return o
	}
	switch salesforce.ClassifyRecord(re, extIDField) {
	case salesforce.Transient:
		o.class = classTransient
	case salesforce.Permanent:
		o.class = classPermanent
	}
	return o
}
