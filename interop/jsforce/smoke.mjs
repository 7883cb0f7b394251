// Smoke test: drive cmd/fakeorg with an unmodified jsforce, the way a new
// user would, and check every answer.
//
//   node smoke.mjs http://127.0.0.1:PORT        (or FAKEORG_URL=... node smoke.mjs)
//
// JSFORCE_VERSION=63.0 picks the API version; unset, jsforce's own default
// (50.0 in jsforce 3.x) is used, as a new user would get. Each step prints
// PASS or FAIL; the exit code is 1 if any step failed.
import jsforce from 'jsforce';

const base = (process.argv[2] || process.env.FAKEORG_URL || '').replace(/\/+$/, '');
if (!base) {
  console.error('usage: node smoke.mjs BASE_URL   (or set FAKEORG_URL)');
  process.exit(2);
}
const version = process.env.JSFORCE_VERSION || undefined;
const clientId = process.env.FAKEORG_CLIENT_ID || 'demo';
const clientSecret = process.env.FAKEORG_CLIENT_SECRET || 'demo-secret';
const username = process.env.FAKEORG_USERNAME || 'integration@example.com';
const password = process.env.FAKEORG_PASSWORD || 'demo-password';
const EXT = process.env.FAKEORG_EXTERNAL_ID_FIELD || 'Source_Id__c';
// A per-run tag keeps runs against one long-lived fake apart.
const tag = `js${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

let failures = 0;
const results = [];
async function step(name, fn) {
  try {
    const detail = await fn();
    results.push([name, 'PASS']);
    console.log(`PASS  ${name}${detail ? '  (' + detail + ')' : ''}`);
  } catch (err) {
    failures++;
    results.push([name, 'FAIL']);
    const extra = err && err.errorCode ? ` [errorCode=${err.errorCode}]` : '';
    console.log(`FAIL  ${name}: ${err && err.message ? err.message : err}${extra}`);
    if (process.env.SMOKE_DEBUG && err && err.stack) console.log(err.stack);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg);
}
function eq(got, want, what) {
  if (got !== want) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
const isAccountId = (id) => typeof id === 'string' && id.length === 18 && id.startsWith('001');

// Loopback admin API of the fake (not Salesforce): config and stats.
async function admin(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status} ${text}`);
  return JSON.parse(text);
}
async function routeCount(route) {
  const stats = await admin('GET', '/_fake/stats');
  return (stats.ByRoute || stats.by_route || {})[route] || 0;
}

const oauth2 = { clientId, clientSecret, loginUrl: base };
const conn = new jsforce.Connection({ oauth2, ...(version ? { version } : {}) });
console.log(`jsforce ${jsforce.VERSION} against ${base}, API version ${conn.version}, tag ${tag}`);

const ids = {};

await step('login: client_credentials (conn.authorize)', async () => {
  const ui = await conn.authorize({ grant_type: 'client_credentials' });
  assert(conn.accessToken, 'accessToken set');
  eq(conn.instanceUrl.replace(/\/+$/, ''), base, 'instanceUrl');
  assert(ui.organizationId && ui.organizationId.startsWith('00D'), `organizationId ${ui.organizationId}`);
  assert(ui.id && ui.id.startsWith('005'), `user id ${ui.id}`);
  return `org ${ui.organizationId}, user ${ui.id}`;
});

if (!conn.accessToken) {
  console.log('FAIL  cannot continue without a session');
  process.exit(1);
}

await step('login: OAuth username-password (conn.login)', async () => {
  const c2 = new jsforce.Connection({ oauth2, ...(version ? { version } : {}) });
  const ui = await c2.login(username, password);
  assert(c2.accessToken, 'accessToken set');
  assert(ui.organizationId && ui.organizationId.startsWith('00D'), `organizationId ${ui.organizationId}`);
  const n = await c2.query('SELECT COUNT() FROM Account');
  assert(typeof n.totalSize === 'number', 'session usable');
});

await step('identity (conn.identity)', async () => {
  const id = await conn.identity();
  assert(id.user_id && id.user_id.startsWith('005'), `user_id ${id.user_id}`);
  assert(id.organization_id && id.organization_id.startsWith('00D'), `organization_id ${id.organization_id}`);
});

await step('versions list (GET /services/data/)', async () => {
  const vs = await conn.request('/services/data/');
  assert(Array.isArray(vs) && vs.some((v) => v.version === conn.version), `version ${conn.version} listed`);
});

await step("create one: sobject('Account').create", async () => {
  const r = await conn.sobject('Account').create({ Name: `${tag} one` });
  assert(r.success === true, 'success');
  assert(isAccountId(r.id), `id ${r.id}`);
  ids.one = r.id;
  return r.id;
});

await step("create many: create('Account', [..])", async () => {
  const rs = await conn.create('Account', [{ Name: `${tag} many-a` }, { Name: `${tag} many-b` }]);
  assert(Array.isArray(rs) && rs.length === 2, 'two results');
  rs.forEach((r, i) => assert(r.success && isAccountId(r.id), `result ${i}: ${JSON.stringify(r)}`));
  ids.many = rs.map((r) => r.id);
});

await step('create: validation error surfaces (no Name)', async () => {
  try {
    await conn.sobject('Account').create({ Description: 'no name' });
  } catch (err) {
    eq(err.errorCode, 'REQUIRED_FIELD_MISSING', 'errorCode');
    return err.errorCode;
  }
  throw new Error('create without Name succeeded');
});

await step("retrieve one: sobject('Account').retrieve(id)", async () => {
  const rec = await conn.sobject('Account').retrieve(ids.one);
  eq(rec.Id, ids.one, 'Id');
  eq(rec.Name, `${tag} one`, 'Name');
  eq(rec.attributes && rec.attributes.type, 'Account', 'attributes.type');
});

await step("retrieve many: retrieve('Account', [ids]) (describe + composite)", async () => {
  const recs = await conn.retrieve('Account', ids.many);
  assert(Array.isArray(recs) && recs.length === 2, 'two records');
  eq(recs[0].Id, ids.many[0], 'first Id');
  eq(recs[1].Name, `${tag} many-b`, 'second Name');
});

await step("update one: sobject('Account').update", async () => {
  const r = await conn.sobject('Account').update({ Id: ids.one, Name: `${tag} one-upd`, Description: 'updated' });
  assert(r.success === true, `result ${JSON.stringify(r)}`);
  const rec = await conn.sobject('Account').retrieve(ids.one);
  eq(rec.Name, `${tag} one-upd`, 'Name after update');
  eq(rec.Description, 'updated', 'Description after update');
});

await step("update many: update('Account', [..])", async () => {
  const rs = await conn.update('Account', ids.many.map((Id, i) => ({ Id, Name: `${tag} many-upd-${i}` })));
  assert(Array.isArray(rs) && rs.length === 2 && rs.every((r) => r.success), JSON.stringify(rs));
  const rec = await conn.sobject('Account').retrieve(ids.many[1]);
  eq(rec.Name, `${tag} many-upd-1`, 'Name after update');
});

await step(`upsert one by ${EXT}: insert then update`, async () => {
  const key = `${tag}-u1`;
  const r1 = await conn.upsert('Account', { Name: `${tag} up-one`, [EXT]: key }, EXT);
  assert(r1.success === true, `first ${JSON.stringify(r1)}`);
  eq(r1.created, true, 'first created');
  assert(isAccountId(r1.id), `id ${r1.id}`);
  const r2 = await conn.upsert('Account', { Name: `${tag} up-one-2`, [EXT]: key }, EXT);
  assert(r2.success === true, `second ${JSON.stringify(r2)}`);
  eq(r2.created, false, 'second created');
  eq(r2.id, r1.id, 'second id');
  const rec = await conn.sobject('Account').retrieve(r1.id);
  eq(rec.Name, `${tag} up-one-2`, 'Name after upsert');
  eq(rec[EXT], key, EXT);
  ids.upOne = r1.id;
});

await step(`upsert many by ${EXT}: upsert('Account', [..], ext)`, async () => {
  const recs = [
    { Name: `${tag} up-many-new`, [EXT]: `${tag}-u2` },
    { Name: `${tag} up-one-3`, [EXT]: `${tag}-u1` },
  ];
  const rs = await conn.upsert('Account', recs, EXT);
  assert(Array.isArray(rs) && rs.length === 2, `results ${JSON.stringify(rs)}`);
  assert(rs.every((r) => r.success), `success ${JSON.stringify(rs)}`);
  eq(rs[0].created, true, 'new record created');
  eq(rs[1].created, false, 'existing record created');
  eq(rs[1].id, ids.upOne, 'existing record id');
  ids.upMany = rs[0].id;
});

await step("delete one: sobject('Account').destroy(id)", async () => {
  const r = await conn.sobject('Account').destroy(ids.one);
  assert(r.success === true, `result ${JSON.stringify(r)}`);
  try {
    await conn.sobject('Account').retrieve(ids.one);
  } catch (err) {
    eq(err.errorCode, 'ENTITY_IS_DELETED', 'retrieve after delete errorCode');
    return;
  }
  throw new Error('deleted record still retrievable');
});

await step("delete many: destroy('Account', [ids])", async () => {
  const rs = await conn.destroy('Account', ids.many);
  assert(Array.isArray(rs) && rs.length === 2 && rs.every((r) => r.success), JSON.stringify(rs));
});

await step('queryAll sees deleted rows: query(..).scanAll(true)', async () => {
  const res = await conn.query(`SELECT Id, IsDeleted FROM Account WHERE Id = '${ids.one}'`).scanAll(true);
  eq(res.totalSize, 1, 'totalSize');
  eq(res.records[0].IsDeleted, true, 'IsDeleted');
});

await step('query: SELECT with WHERE/ORDER BY', async () => {
  const res = await conn.query(`SELECT Id, Name, ${EXT} FROM Account WHERE Name LIKE '${tag}%' ORDER BY Name`);
  eq(res.done, true, 'done');
  eq(res.totalSize, 2, 'totalSize (two upserted, rest deleted)');
  eq(res.records[0].Name, `${tag} up-many-new`, 'first Name');
  eq(res.records[1][EXT], `${tag}-u1`, `second ${EXT}`);
});

await step('query: COUNT()', async () => {
  const res = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE '${tag}%'`);
  eq(res.totalSize, 2, 'totalSize');
  const n = await conn.sobject('Account').count({ Name: { $like: `${tag}%` } });
  eq(n, 2, "sobject('Account').count()");
});

// Paging with the fake's page size lowered to 3 (PUT /_fake/config).
await step('query paging: page_size 3, 10 rows, autoFetch + queryMore', async () => {
  const cfg = await admin('GET', '/_fake/config');
  const oldSize = cfg.page_size;
  const names = Array.from({ length: 10 }, (_, i) => ({ Name: `${tag} page-${String(i).padStart(2, '0')}` }));
  const crs = await conn.create('Account', names);
  assert(crs.every((r) => r.success), 'inserted 10');
  await admin('PUT', '/_fake/config', { page_size: 3 });
  try {
    const soql = `SELECT Id, Name FROM Account WHERE Name LIKE '${tag} page-%' ORDER BY Name`;
    const before = await routeCount('GET /query/{locator}');
    const all = await conn.query(soql).run({ autoFetch: true, maxFetch: 100 });
    eq(all.totalSize, 10, 'totalSize');
    eq(all.records.length, 10, 'records fetched with autoFetch');
    eq(all.records[9].Name, `${tag} page-09`, 'last record');
    const more = (await routeCount('GET /query/{locator}')) - before;
    eq(more, 3, 'queryMore calls made by autoFetch');
    // Manual paging.
    const p1 = await conn.query(soql);
    eq(p1.done, false, 'first page done');
    eq(p1.records.length, 3, 'first page size');
    assert(p1.nextRecordsUrl, 'nextRecordsUrl');
    const p2 = await conn.queryMore(p1.nextRecordsUrl);
    eq(p2.records.length, 3, 'second page size');
    eq(p2.records[0].Name, `${tag} page-03`, 'second page first record');
  } finally {
    await admin('PUT', '/_fake/config', { page_size: oldSize });
  }
  return `restored page_size ${oldSize}`;
});

// Paging at the default page size of 2,000: insert 2,050 rows.
await step('query paging: 2,050 rows at default page size (create allowRecursive)', async () => {
  const recs = Array.from({ length: 2050 }, (_, i) => ({ Name: `${tag} bulk-${String(i).padStart(4, '0')}` }));
  const crs = await conn.create('Account', recs, { allowRecursive: true });
  eq(crs.length, 2050, 'create results');
  assert(crs.every((r) => r.success), 'all inserted');
  const soql = `SELECT Id, Name FROM Account WHERE Name LIKE '${tag} bulk-%'`;
  const p1 = await conn.query(soql);
  eq(p1.totalSize, 2050, 'totalSize');
  eq(p1.done, false, 'first page done');
  eq(p1.records.length, 2000, 'first page size');
  const all = await conn.query(soql).autoFetch(true).maxFetch(5000);
  eq(all.records.length, 2050, 'records with autoFetch');
  eq(new Set(all.records.map((r) => r.Id)).size, 2050, 'distinct Ids');
});

await step("describe: sobject('Account').describe()", async () => {
  const d = await conn.sobject('Account').describe();
  eq(d.name, 'Account', 'name');
  const ext = d.fields.find((f) => f.name === EXT);
  assert(ext, `${EXT} in fields`);
  eq(ext.externalId, true, `${EXT}.externalId`);
  assert(d.fields.some((f) => f.name === 'Name'), 'Name in fields');
  return `${d.fields.length} fields`;
});

await step('describeGlobal', async () => {
  const g = await conn.describeGlobal();
  assert(Array.isArray(g.sobjects) && g.sobjects.some((s) => s.name === 'Account'), 'Account listed');
});

await step("updated: sobject('Account').updated(start, end)", async () => {
  const end = new Date(Date.now() + 60_000);
  const start = new Date(Date.now() - 3_600_000);
  const r = await conn.sobject('Account').updated(start, end);
  assert(Array.isArray(r.ids) && r.ids.includes(ids.upOne), 'upserted id listed');
  assert(r.latestDateCovered, 'latestDateCovered');
});

await step("deleted: sobject('Account').deleted(start, end)", async () => {
  const end = new Date(Date.now() + 60_000);
  const start = new Date(Date.now() - 3_600_000);
  const r = await conn.sobject('Account').deleted(start, end);
  assert(Array.isArray(r.deletedRecords) && r.deletedRecords.some((d) => d.id === ids.one), 'deleted id listed');
  assert(r.latestDateCovered, 'latestDateCovered');
});

await step('limits: conn.limits() and conn.limitInfo', async () => {
  const l = await conn.limits();
  const d = l.DailyApiRequests;
  assert(d && typeof d.Max === 'number' && typeof d.Remaining === 'number', `DailyApiRequests ${JSON.stringify(d)}`);
  assert(d.Remaining <= d.Max, 'Remaining <= Max');
  const info = conn.limitInfo && conn.limitInfo.apiUsage;
  assert(info && typeof info.used === 'number' && info.limit === d.Max, `limitInfo.apiUsage ${JSON.stringify(info)}`);
  return `${d.Remaining}/${d.Max} remaining, used ${info.used}`;
});

await step(`limits via conn.request('/services/data/v${conn.version}/limits')`, async () => {
  const l = await conn.request(`/services/data/v${conn.version}/limits`);
  assert(l.DailyApiRequests && typeof l.DailyApiRequests.Max === 'number', 'DailyApiRequests');
});

const passed = results.filter((r) => r[1] === 'PASS').length;
console.log(`jsforce ${jsforce.VERSION} (API ${conn.version}): ${passed}/${results.length} passed`);
process.exit(failures ? 1 : 0);
