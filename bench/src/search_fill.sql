-- The search scenario's data: fills a Courier database (migrated by `courier migrate`,
-- so the search column and index are maintained by the inserts themselves) with
-- :messages messages over :chats group chats of 2-9 members among :users users; user 0
-- (id 00000000-0000-4000-8000-000000000000) takes part in the first :my_chats chats.
-- Messages are spread evenly over the chats and the last 365 days. Content: 3-17
-- words drawn from a Zipf distribution (P(rank r) ~ 1/r) over :vocab words: the ~200
-- most frequent are common chat words, the tail is made of three syllables (the word
-- of rank r >= 201 is syl[r % 24] || syl[r / 24 % 24] || syl[r / 576 % 24], 1-based).
-- Run with psql -v messages=... -v chats=... -v users=... -v my_chats=... -v vocab=...
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';

CREATE TEMP TABLE fill_words AS SELECT
  ARRAY['the','to','i','you','a','and','is','it','in','for','we','that','on','of','this','be',
        'have','can','with','so','me','are','just','not','will','at','do','ok','but','my','meeting',
        'yes','no','what','all','get','if','was','know','about','up','now','think','deploy',
        'tomorrow','today','thanks','good','time','there','one','need','like','see','from','how',
        'lunch','call','fix','review','release','bug','test','team','please','sure','back','new',
        'out','when','let','great','going','would','work','should','server','build','check',
        'later','could','also','sorry','update','friday','monday','week','done','look','send',
        'file','issue','merge','branch','coffee','problem','client','design','doc','plan',
        'question','morning','night','weekend','happy','birthday','budget','invoice','customer',
        'database','cache','queue','latency','outage','incident','rollback','staging',
        'production','ticket','sprint','demo','slides','agenda','notes','vacation','holiday',
        'pizza','dinner','train','flight','hotel','weather','rain','snow','music','movie',
        'game','football','party','kids','school','doctor','office','remote','laptop',
        'password','login','email','phone','message','link','photo','video','price','order',
        'shipping','payment','refund','contract','lawyer','marketing','launch','feature',
        'roadmap','quarter','report','metrics','dashboard','alert','pager','oncall',
        'kubernetes','docker','postgres','redis','rabbitmq','rust','python','javascript',
        'frontend','backend','mobile','android','iphone','api','endpoint','schema','migration',
        'index','query','search','benchmark','performance','memory','cpu','disk','network']
    AS common,
  ARRAY['ka','lo','mi','ne','ru','sa','to','vi','be','da','fu','ge','ho','ji','ku','la','mo',
        'no','pe','ri','su','te','wa','zo'] AS syl;

INSERT INTO users (id, username, display_name, password_hash)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       'searcher' || u, 'Searcher ' || u, 'filled-by-bench-not-a-hash'
FROM generate_series(0, :users - 1) u;

CREATE TEMP TABLE fill_members AS
SELECT c, k, CASE WHEN c < :my_chats AND k = 0 THEN 0 ELSE (c * 7 + k * 13 + 1) % :users END AS u,
       2 + c % 8 AS size
FROM generate_series(0, :chats - 1) c, LATERAL generate_series(0, 1 + c % 8) k;

INSERT INTO chats (id, type, title, created_by, created_at)
SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid, 'group', 'chat ' || c,
       ('00000000-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid, now() - interval '400 days'
FROM fill_members WHERE k = 0;

INSERT INTO chat_participants (chat_id, user_id, role, joined_at)
SELECT DISTINCT ON (c, u) ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       CASE WHEN k = 0 THEN 'owner' ELSE 'member' END, now() - interval '400 days'
FROM fill_members ORDER BY c, u, k;

INSERT INTO messages (id, chat_id, sender_id, client_message_id, broker_message_id, content,
                      sequence, sent_at)
SELECT gen_random_uuid(),
       ('00000000-0000-4000-9000-' || lpad(to_hex(g.c), 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad(to_hex(m.u), 12, '0'))::uuid,
       gen_random_uuid(), gen_random_uuid(),
       (SELECT string_agg(CASE WHEN r <= cardinality(w.common) THEN w.common[r]
                               ELSE w.syl[1 + r % 24] || w.syl[1 + (r / 24) % 24]
                                    || w.syl[1 + (r / 576) % 24] END, ' ')
        FROM (SELECT floor(exp(random() * ln(:vocab + 1)))::int AS r
              FROM generate_series(1, g.len)) z),
       g.seq,
       now() - interval '365 days' + (g.i::float8 / :messages) * interval '365 days'
FROM (SELECT i, i % :chats AS c, i / :chats + 1 AS seq, 3 + (i::bigint * 7919) % 15 AS len
      FROM generate_series(0, :messages - 1) i) g
JOIN fill_members m ON m.c = g.c AND m.k = (g.seq % m.size)
CROSS JOIN fill_words w;

UPDATE chats c SET last_sequence = s.n, last_message_at = s.at
FROM (SELECT chat_id, max(sequence) AS n, max(sent_at) AS at FROM messages GROUP BY chat_id) s
WHERE c.id = s.chat_id;

VACUUM ANALYZE users;
VACUUM ANALYZE chats;
VACUUM ANALYZE chat_participants;
VACUUM ANALYZE messages;
