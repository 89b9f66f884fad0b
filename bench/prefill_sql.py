"""The statements of `bench/prefill.py`: one staging row per order, then one INSERT ... SELECT per table.

Each statement reads the chunk's staging table `prefill_t` once, in order, with no join or sort; the shape
of every row was copied from orders run through the platform (see `bench/prefill.py`).
"""

from __future__ import annotations

# One row per order of the chunk with everything the inserts derive from (TEMP tables are unlogged).
# hashint8(n * 16 + k) & 1023 is a per-order pseudo-random number in 0..1023, the same on every run.
# Every insert below reads this table once in `n` order, so no join or sort is needed.
STAGE = """
CREATE TEMP TABLE prefill_t ON COMMIT DROP AS
WITH base AS (
  SELECT n, $3::float8 + n * $5::float8 + ((hashint8(n * 16 + 1) & 1023) / 1024.0) * $5::float8 * 0.9
           AS created,
         (hashint8(n * 16 + 2) & 1023) < 61 AS failed, hashint8(n * 16 + 3) & 1023 AS r_two,
         hashint8(n * 16 + 4) & 1023 AS r_rej, hashint8(n * 16 + 5) & 1023 AS r_ch,
         hashint8(n * 16 + 6) & 1023 AS r_acct, hashint8(n * 16 + 7) & 1023 AS r_lat
  FROM generate_series($1::bigint, $2::bigint) AS n
), shaped AS (
  SELECT b.n, b.created, b.r_acct, NOT b.failed AS ok,
    CASE WHEN b.failed OR b.r_two < 143 THEN 2 ELSE 1 END AS na,
    -- a failed first attempt is rejected at dispatch or failed by a callback; a failed order's second
    -- attempt is rejected at dispatch
    (b.failed OR b.r_two < 143) AND b.r_rej < 512 AS rej1, b.failed AS rej2,
    CASE WHEN b.r_ch < 717 THEN 0 WHEN b.r_ch < 922 THEN 1 ELSE 2 END AS ci,
    'ord_' || lpad(to_hex((b.created * 1000)::bigint), 11, '0') || 'h' || lpad(b.n::text, 11, '0') AS id,
    'h' || lpad(b.n::text, 11, '0') AS tail,
    0.02 + b.r_lat / 20000.0 AS lat, 0.35 + b.r_lat / 700.0 AS cb
  FROM base b
), timed AS (
  SELECT s.*, s.created + 0.012 AS a1s, s.created + 0.018 AS a1d, s.created + s.lat AS a1r,
    s.created + CASE WHEN s.rej1 THEN s.lat ELSE s.cb END AS a1f
  FROM shaped s
)
SELECT t.n, t.id, t.ok, t.na, t.rej1, t.rej2, t.created,
  'evt_' || lpad(to_hex((t.created * 1000)::bigint), 11, '0') || t.tail AS eid,
  'history-' || (t.n % $6::int + 1) AS mid,
  (ARRAY['138','139','150','130','186','133','189'])[t.r_acct % 7 + 1]
    || lpad((t.r_acct % 40 + 1)::text, 8, '0') AS account,
  (ARRAY['cmcc','cmcc','cmcc','cucc','cucc','ctcc','ctcc'])[t.r_acct % 7 + 1] AS carrier,
  (ARRAY['CN-BJ','CN-SH','CN-GD','CN-ZJ','CN-JS','CN-SC','CN-HB'])[t.r_acct / 7 % 7 + 1] AS region,
  ($4::text[])[t.ci % cardinality($4::text[]) + 1] AS c1,
  ($4::text[])[(t.ci + 1) % cardinality($4::text[]) + 1] AS c2,
  CASE WHEN t.ok AND t.na = 1 THEN 'succeeded' ELSE 'failed' END AS st1,
  CASE WHEN t.ok THEN 'succeeded' ELSE 'failed' END AS st2,
  CASE WHEN t.ok AND t.na = 1 THEN NULL WHEN t.rej1 THEN 'rejected: R01 simulated rejection'
       ELSE 'supplier_failed: E42' END AS reason1,
  CASE WHEN t.ok THEN NULL ELSE 'rejected: R01 simulated rejection' END AS reason2,
  t.a1s, t.a1d, t.a1r, t.a1f, t.a1f + 0.006 AS a2s, t.a1f + 0.012 AS a2d, t.a1f + 0.016 AS a2r,
  t.a1f + CASE WHEN t.rej2 THEN 0.016 ELSE 0.316 END AS a2f,
  CASE WHEN t.na = 1 THEN t.a1f WHEN t.rej2 THEN t.a1f + 0.016 ELSE t.a1f + 0.316 END AS done,
  'trf_' || lpad(to_hex((t.created * 1000)::bigint), 11, '0') || 'ho' || substr(t.tail, 3) AS trf_hold,
  p.price, p.face_value, p.business_type, p.code AS product
FROM timed t CROSS JOIN (SELECT * FROM products WHERE code = $7) p
"""

_RFC3339 = "to_char(to_timestamp({}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

ORDERS = """
INSERT INTO orders (id, merchant_id, merchant_order_id, request_hash, batch_id, business_type, product_code,
  account, carrier, region, face_value, price, status, failure_reason, notify_url, extra, funding, payment_id,
  group_code, route_plan, is_probe, attempt_count, succeeded_ref, created_at, updated_at, completed_at)
SELECT t.id, t.mid, 'H' || t.n, md5(t.id) || md5(t.eid), NULL, t.business_type, t.product,
  t.account, t.carrier, t.region, t.face_value, t.price, t.st2, 'all_channels_failed: ' || t.reason2, NULL,
  NULL, 'balance', NULL,
  $1, json_build_array(t.c1, t.c2), false, t.na, CASE WHEN t.ok THEN t.id || '-' || t.na END,
  t.created, t.done, t.done
FROM prefill_t t
"""

# Per attempt: (no, channel, status, rejected, reason, started, dispatched, replied, finished).
_ATTEMPT_ROWS = """
CROSS JOIN LATERAL (VALUES
  (1, t.c1, t.st1, t.rej1, t.reason1, t.a1s, t.a1d, t.a1r, t.a1f),
  (2, t.c2, t.st2, t.rej2, t.reason2, t.a2s, t.a2d, t.a2r, t.a2f)
) AS a(no, channel, status, rejected, reason, started, dispatched, replied, finished)
"""

ATTEMPTS = f"""
INSERT INTO attempts (order_id, no, ref, channel_code, group_code, status, reason, supplier_order_id,
  dispatch_state, started_at, dispatched_at, finished_at, deadline_at, latency_ms, supplier_ref, cost)
SELECT t.id, a.no, t.id || '-' || a.no, a.channel, $1, a.status, a.reason,
  CASE WHEN NOT a.rejected THEN a.channel || '-' || t.n || '-' || a.no END,
  CASE WHEN a.rejected THEN 'rejected' ELSE 'accepted' END, a.started, a.dispatched, a.finished,
  a.dispatched + 1.0, round(((a.replied - a.dispatched) * 1000)::numeric, 3)::float8, t.id || '-' || a.no,
  NULL
FROM prefill_t t {_ATTEMPT_ROWS} WHERE a.no <= t.na
"""

# The timeline: created, per attempt dispatch / dispatch_reply / (callback) / attempt_*, the final entry.
ORDER_EVENTS = f"""
INSERT INTO order_events (order_id, attempt_no, kind, detail, at)
SELECT t.id, e.attempt_no, e.kind, e.detail, e.at
FROM prefill_t t {_ATTEMPT_ROWS}
CROSS JOIN LATERAL (VALUES
  (0, NULL::int, 'created', json_build_object('price', t.price, 'group', $1::text), t.created),
  (1, a.no, 'dispatch', json_build_object('channel', a.channel, 'ref', t.id || '-' || a.no), a.started),
  (2, a.no, 'dispatch_reply', json_build_object(
     'result', CASE WHEN a.rejected THEN 'rejected' ELSE 'accepted' END,
     'code', CASE WHEN a.rejected THEN 'R01' END,
     'message', CASE WHEN a.rejected THEN 'simulated rejection' END,
     'http_status', 200, 'latency_ms', round(((a.replied - a.dispatched) * 1000)::numeric, 1),
     'supplier_order_id', CASE WHEN NOT a.rejected THEN a.channel || '-' || t.n || '-' || a.no END),
   a.replied),
  (3, a.no, 'callback', json_build_object(
     'status', CASE WHEN a.status = 'succeeded' THEN 'success' ELSE 'failed' END,
     'code', CASE WHEN a.status = 'succeeded' THEN '00' ELSE 'E42' END,
     'message', CASE WHEN a.status = 'succeeded' THEN 'success' ELSE 'simulated failure' END,
     'supplier_order_id', a.channel || '-' || t.n || '-' || a.no, 'attempt_status', 'pending'), a.finished),
  (4, a.no, CASE WHEN a.status = 'succeeded' THEN 'attempt_succeeded' ELSE 'attempt_failed' END,
     CASE WHEN a.status = 'succeeded' THEN json_build_object('source', 'callback')
          ELSE json_build_object('reason', a.reason) END, a.finished),
  (5, CASE WHEN t.ok THEN t.na END, CASE WHEN t.ok THEN 'order_succeeded' ELSE 'order_failed' END,
     CASE WHEN t.ok THEN json_build_object('channel', a.channel)
          ELSE json_build_object('reason', 'all_channels_failed: ' || a.reason) END, t.done)
) AS e(k, attempt_no, kind, detail, at)
WHERE a.no <= t.na AND (e.k <> 0 OR a.no = 1) AND (e.k <> 3 OR NOT a.rejected) AND (e.k <> 5 OR a.no = t.na)
"""

CALLBACKS = f"""
INSERT INTO callbacks (channel_code, ref, status, supplier_order_id, code, message, outcome, received_at)
SELECT a.channel, t.id || '-' || a.no, CASE WHEN a.status = 'succeeded' THEN 'success' ELSE 'failed' END,
  a.channel || '-' || t.n || '-' || a.no, CASE WHEN a.status = 'succeeded' THEN '00' ELSE 'E42' END,
  CASE WHEN a.status = 'succeeded' THEN 'success' ELSE 'simulated failure' END,
  CASE WHEN a.status = 'succeeded' THEN 'completed' ELSE 'failed_over' END, a.finished
FROM prefill_t t {_ATTEMPT_ROWS} WHERE a.no <= t.na AND NOT a.rejected
"""


def _attempt_json(no: int) -> str:
    return (
        f"json_build_object('no', {no}, 'channel', t.c{no}, 'ref', t.id || '-{no}', 'supplier_ref',"
        f" t.id || '-{no}', 'status', t.st{no}, 'reason', t.reason{no},"
        f" 'started_at', {_RFC3339.format(f't.a{no}s')}, 'finished_at', {_RFC3339.format(f't.a{no}f')})"
    )


EVENTS = f"""
INSERT INTO events (id, merchant_id, order_id, type, payload, created_at)
SELECT t.eid, t.mid, t.id, 'order.' || t.st2,
  json_build_object('event_id', t.eid, 'type', 'order.' || t.st2, 'order', json_build_object(
    'order_id', t.id, 'merchant_order_id', 'H' || t.n, 'batch_id', NULL,
    'business_type', t.business_type, 'product_code', t.product, 'account', t.account,
    'carrier', t.carrier, 'region', t.region, 'face_value', t.face_value, 'price', t.price,
    'status', t.st2, 'failure_reason', 'all_channels_failed: ' || t.reason2,
    'attempts', CASE WHEN t.na = 1 THEN json_build_array({_attempt_json(1)})
                     ELSE json_build_array({_attempt_json(1)}, {_attempt_json(2)}) END,
    'created_at', {_RFC3339.format("t.created")}, 'updated_at', {_RFC3339.format("t.done")},
    'completed_at', {_RFC3339.format("t.done")})),
  t.done
FROM prefill_t t
"""

DELIVERIES = """
INSERT INTO deliveries (event_id, merchant_id, order_id, url, status, tries, next_at, delivered_at,
  created_at)
SELECT t.eid, t.mid, t.id, m.notify_url, 'delivered', 1, NULL, t.done + 0.02, t.done
FROM prefill_t t JOIN merchants m ON m.id = t.mid WHERE m.notify_url IS NOT NULL
"""

DELIVERY_ATTEMPTS = """
INSERT INTO delivery_attempts (event_id, at, status_code, latency_ms, error)
SELECT t.eid, t.done + 0.02, 200, 2.5, NULL
FROM prefill_t t JOIN merchants m ON m.id = t.mid WHERE m.notify_url IS NOT NULL
"""

# hold at creation, then capture (succeeded) or release (failed: the refund), as services/ledger.py posts.
_TRANSFER_ROWS = """
CROSS JOIN LATERAL (VALUES
  (t.trf_hold, 'hold', t.created, 'merchant:' || t.mid || ':available', 'merchant:' || t.mid || ':held'),
  ('trf_' || lpad(to_hex((t.done * 1000)::bigint), 11, '0') || CASE WHEN t.ok THEN 'hc' ELSE 'hr' END
     || substr(t.trf_hold, 18), CASE WHEN t.ok THEN 'capture' ELSE 'release' END, t.done,
   'merchant:' || t.mid || ':held',
   CASE WHEN t.ok THEN 'platform:revenue' ELSE 'merchant:' || t.mid || ':available' END)
) AS x(id, kind, at, debit, credit)
"""

TRANSFERS = f"""
INSERT INTO transfers (id, kind, reference, merchant_id, order_id, payment_id, amount, created_at)
SELECT x.id, x.kind, t.id, t.mid, t.id, NULL, t.price, x.at FROM prefill_t t {_TRANSFER_ROWS}
"""

POSTINGS = f"""
INSERT INTO postings (transfer_id, account_id, amount)
SELECT x.id, p.account, p.amount FROM prefill_t t {_TRANSFER_ROWS}
CROSS JOIN LATERAL (VALUES (x.debit, -t.price), (x.credit, t.price)) AS p(account, amount)
"""

# One deposit per merchant and chunk: what its captured orders cost, plus a float to spend.
_NEED = """
SELECT t.mid, coalesce(sum(t.price) FILTER (WHERE t.ok), 0) + 1000000 AS amount
FROM prefill_t t GROUP BY t.mid
"""

DEPOSITS = f"""
WITH tr AS (
  INSERT INTO transfers (id, kind, reference, merchant_id, order_id, payment_id, amount, created_at)
  SELECT 'trf_' || lpad(to_hex(($2::float8 * 1000)::bigint), 11, '0') || 'hd' || lpad(($1::bigint * 100
           + split_part(need.mid, '-', 2)::int)::text, 10, '0'),
         'deposit', need.mid || ':prefill-' || $1::bigint, need.mid, NULL, NULL, need.amount, $2::float8
  FROM ({_NEED}) need RETURNING id, merchant_id, amount
)
INSERT INTO postings (transfer_id, account_id, amount)
SELECT tr.id, p.account, p.amount FROM tr CROSS JOIN LATERAL (VALUES
  ('world:deposits', -tr.amount), ('merchant:' || tr.merchant_id || ':available', tr.amount)
) AS p(account, amount)
"""

# Cached balances move by exactly what this chunk posted (the same expressions as the postings), in one
# account order so that two loading connections never wait on each other in a cycle.
BALANCES = f"""
INSERT INTO ledger_accounts (id, merchant_id, balance)
SELECT d.account, CASE WHEN d.account LIKE 'merchant:%' THEN split_part(d.account, ':', 2) END, sum(d.amount)
FROM (
  SELECT p.account, p.amount FROM prefill_t t {_TRANSFER_ROWS}
  CROSS JOIN LATERAL (VALUES (x.debit, -t.price), (x.credit, t.price)) AS p(account, amount)
  UNION ALL
  SELECT p.account, p.amount FROM ({_NEED}) need CROSS JOIN LATERAL (VALUES
    ('world:deposits', -need.amount), ('merchant:' || need.mid || ':available', need.amount)
  ) AS p(account, amount)
) d GROUP BY d.account ORDER BY d.account
ON CONFLICT (id) DO UPDATE SET balance = ledger_accounts.balance + EXCLUDED.balance
"""

MERCHANTS = """
INSERT INTO merchants (id, name, secret, password_hash, notify_url, created_at, updated_at)
SELECT 'history-' || i, 'history-' || i, m.secret, NULL, m.notify_url, $2::float8, $2::float8
FROM merchants m CROSS JOIN generate_series(1, $3::int) AS i WHERE m.id = $1
ON CONFLICT (id) DO NOTHING
"""


SESSION = "SET synchronous_commit = off; SET work_mem = '64MB'; SET session_replication_role = replica"

# Indexes that back no constraint: dropped while a large prefill loads, built again after it.
LOOSE_INDEXES = """
SELECT ci.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ci ON ci.oid = i.indexrelid
WHERE c.relname = ANY($1::text[]) AND c.relnamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname, ci.relname
"""
