-- The search statement of src/db/search.rs (sqlx::query_file!), also prepared and
-- explained by the bench (bench/src/search.rs). $1 viewer, $2 web-search query,
-- $3 chat (NULL: all the viewer's), $4-$6 the key to start after (rank, sent_at, id;
-- NULL: first page), $7 page size plus one.
--
-- The inner query ranks the candidates and keeps a page (plus one); only that page
-- pays for a headline (ts_headline parses the whole content again). The chat filter
-- sits in the membership subquery, so that a generic plan (prepared statement) still
-- loops over one chat, not over all of the caller's. The headline is made from the
-- content with & < > " ' escaped (its only markup is <mark>): whole up to 300
-- characters (WHOLE_SNIPPET_CHARS), else up to two fragments of 8-20 words around
-- the matches, joined by " … ".
SELECT m.id AS "id!", m.chat_id AS "chat_id!", m.sender_id AS "sender_id!",
       m.client_message_id AS "client_message_id!", m.content AS "content!",
       m.message_type AS "message_type!", m.sequence AS "sequence!", m.sent_at AS "sent_at!",
       m.edited_at, m.deleted_at, m.reply_to_id, m.forwarded_chat_id, m.forwarded_message_id,
       m.forwarded_sender_id, m.mentions AS "mentions!", m.bot_name,
       m.rank AS "rank!", m.sent_at AS "key_at!",
       CASE WHEN char_length(m.content) <= 300
            THEN ts_headline('simple'::regconfig,
                             replace(replace(replace(replace(replace(m.content, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
                                     '"', '&quot;'), '''', '&#39;'),
                             m.tsq, 'StartSel=<mark>, StopSel=</mark>, HighlightAll=true')
            ELSE ts_headline('simple'::regconfig,
                             replace(replace(replace(replace(replace(m.content, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
                                     '"', '&quot;'), '''', '&#39;'),
                             m.tsq, 'StartSel=<mark>, StopSel=</mark>, MaxWords=20, MinWords=8, '
                                    'MaxFragments=2, FragmentDelimiter=" … "')
       END AS "snippet!"
FROM (
    SELECT m.*, ts_rank(m.search, q.tsq) AS rank, q.tsq
    FROM messages m, websearch_to_tsquery('simple'::regconfig, translate($2, '<>', '  ')) AS q(tsq)
    WHERE m.chat_id IN (SELECT p.chat_id FROM chat_participants p
                         WHERE p.user_id = $1 AND ($3::uuid IS NULL OR p.chat_id = $3))
      AND m.deleted_at IS NULL
      AND m.search @@ q.tsq
      AND ($4::real IS NULL OR (ts_rank(m.search, q.tsq), m.sent_at, m.id) < ($4, $5, $6))
    ORDER BY rank DESC, m.sent_at DESC, m.id DESC
    LIMIT $7
) m
ORDER BY m.rank DESC, m.sent_at DESC, m.id DESC
