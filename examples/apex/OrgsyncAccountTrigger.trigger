/**
 * orgsync: hands every Account created in this (source) org to
 * OrgsyncPublisher, which POSTs them to `producer serve` in chunks of 200.
 *
 * Bulk-safe: it looks at all of Trigger.new (never Trigger.new[0]) and
 * enqueues one Queueable per trigger chunk of up to 200 records. No callout
 * happens in the trigger, so saving an Account never waits for orgsync.
 */
trigger OrgsyncAccountTrigger on Account (after insert) {
    List<Id> ids = new List<Id>();
    for (Account a : Trigger.new) {
        // In a two-way setup, records orgsync itself wrote carry
        // Source_Id__c: do not send them back. Remove this test if the org
        // has no such field.
        if (String.isBlank(a.Source_Id__c)) {
            ids.add(a.Id);
        }
    }
    if (!ids.isEmpty()) {
        OrgsyncPublisher.enqueue(ids);
    }
}
