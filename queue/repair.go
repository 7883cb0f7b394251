package queue

// HeaderRepair marks an account.created event published by `worker
// reconcile -repair`; its value is the reconcile run's ID. A worker writes
// such an event to the target even when its ID map already knows the source
// record: the map says orgsync wrote the record once, while the repair
// exists because the target no longer agrees.
const HeaderRepair = "Orgsync-Repair"
