// Interop smoke: the npm salesforce-pubsub-api-client (pozil, 5.x), used as
// its README tells a new user, against cmd/fakeorg -pubsub-addr.
//
//   node smoke.mjs HTTP_URL PUBSUB_ADDR     (or FAKEORG_URL / FAKEORG_PUBSUB_ADDR)
//
// Client credentials login, certificate checking off (the fake's certificate
// is self-signed). Steps: subscribe from the newest event and receive a
// create, an update and a delete with decoded payloads and changed-field
// names; resume after a stored replay ID; replay from the earliest event;
// get an error, not events, for a replay ID that does not exist.
import PubSubApiClient from 'salesforce-pubsub-api-client';

const url = process.argv[2] || process.env.FAKEORG_URL;
const addr = process.argv[3] || process.env.FAKEORG_PUBSUB_ADDR;
if (!url || !addr) {
    console.error('usage: node smoke.mjs HTTP_URL PUBSUB_ADDR');
    process.exit(2);
}
const clientId = process.env.FAKEORG_CLIENT_ID || 'demo';
const clientSecret = process.env.FAKEORG_CLIENT_SECRET || 'demo-secret';
const topic = '/data/AccountChangeEvent';
const tag = `pubsub-${Date.now()}`;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

let failures = 0;
function check(name, ok, detail = '') {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
    if (!ok) failures++;
}

function newClient() {
    return new PubSubApiClient(
        {
            authType: 'oauth-client-credentials',
            loginUrl: url,
            clientId,
            clientSecret,
            pubSubEndpoint: addr,
            rejectUnauthorizedSsl: false
        },
        quiet
    );
}

async function rest(method, path, body) {
    const tok = await (
        await fetch(`${url}/services/oauth2/token`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret })
        })
    ).json();
    const res = await fetch(`${tok.instance_url}/services/data/v63.0${path}`, {
        method,
        headers: { Authorization: `Bearer ${tok.access_token}`, 'Content-Type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
}

async function pubsubState() {
    return (await fetch(`${url}/_fake/pubsub`)).json();
}

async function until(what, cond, ms = 20000) {
    const end = Date.now() + ms;
    while (!(await cond())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

// collect subscribes with subscribeFn and gathers events and errors.
function collector() {
    const c = { events: [], errors: [], ended: false };
    c.callback = (_sub, type, data) => {
        if (type === 'event') c.events.push(data);
        else if (type === 'error') c.errors.push(data);
        else if (type === 'end') c.ended = true;
    };
    return c;
}

const client = newClient();
await client.connect();
const before = (await pubsubState()).subscribers;
const live = collector();
client.subscribe(topic, live.callback, null);
await until('the subscription', async () => (await pubsubState()).subscribers > before);

const created = await rest('POST', '/sobjects/Account', { Name: `${tag}-acme`, Phone: '555-0100', BillingCity: 'Paris' });
await rest('PATCH', `/sobjects/Account/${created.id}`, { Phone: null, BillingCity: 'Lyon' });
await rest('DELETE', `/sobjects/Account/${created.id}`);
await until('3 events', async () => live.events.length >= 3);
const mine = live.events.filter((e) => e.payload.ChangeEventHeader.recordIds.includes(created.id));
const types = mine.map((e) => e.payload.ChangeEventHeader.changeType);
check('create, update, delete received', types.join(',') === 'CREATE,UPDATE,DELETE', types.join(','));
const [cr, up] = mine;
check('create payload decoded', cr?.payload?.Name === `${tag}-acme` && cr?.payload?.BillingAddress?.City === 'Paris',
    JSON.stringify({ Name: cr?.payload?.Name, BillingAddress: cr?.payload?.BillingAddress }));
const changed = up?.payload?.ChangeEventHeader?.changedFields || [];
check('update changedFields decoded', changed.includes('Phone') && changed.includes('BillingAddress.City'), changed.join(','));
const nulled = up?.payload?.ChangeEventHeader?.nulledFields || [];
check('update nulledFields decoded', nulled.includes('Phone'), nulled.join(','));
check('replay IDs are numbers', typeof cr?.replayId === 'number', typeof cr?.replayId);
client.close();

// Resume after the create's replay ID: the update and the delete.
const resumeClient = newClient();
await resumeClient.connect();
const resumed = collector();
resumeClient.subscribeFromReplayId(topic, resumed.callback, 2, cr.replayId);
await until('2 resumed events', async () => resumed.events.length >= 2);
check('resume after a stored replay ID',
    resumed.events.map((e) => e.payload.ChangeEventHeader.changeType).join(',') === 'UPDATE,DELETE' &&
    resumed.events[0].replayId === up.replayId,
    resumed.events.map((e) => `${e.replayId}:${e.payload.ChangeEventHeader.changeType}`).join(' '));
resumeClient.close();

// Replay from the earliest event.
const state = await pubsubState();
const total = state.events;
const oldest = Number(BigInt('0x' + state.oldest_replay_id.slice(0, 16)));
const earliestClient = newClient();
await earliestClient.connect();
const earliest = collector();
earliestClient.subscribeFromEarliestEvent(topic, earliest.callback, Math.min(total, 100));
await until('earliest events', async () => earliest.events.length >= Math.min(total, 100));
const ids = earliest.events.map((e) => e.replayId);
check('earliest: events in replay order', ids.every((v, i) => i === 0 || v > ids[i - 1]), `${ids.length} events`);
check('earliest: starts at the oldest retained event', ids[0] === oldest, `${ids[0]} vs ${oldest}`);
earliestClient.close();

// A replay ID that does not exist: an error, not events.
const badClient = newClient();
await badClient.connect();
const bad = collector();
badClient.subscribeFromReplayId(topic, bad.callback, 1, cr.replayId + 1_000_000);
await until('an error', async () => bad.errors.length > 0 || bad.events.length > 0);
const err = bad.errors[0];
check('unknown replay ID: error, no events', bad.events.length === 0 && err?.code === 3 &&
    String(err?.metadata?.get('error-code')).includes('replayid.corrupted'),
    `code ${err?.code} ${err?.metadata?.get('error-code')}`);
badClient.close();

console.log(failures === 0 ? 'pubsub smoke passed' : `pubsub smoke: ${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
