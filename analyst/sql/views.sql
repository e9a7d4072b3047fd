-- newsbeam analyst views for DuckDB.
--
-- analyst/views.py renders this file for one output root: every double-braced placeholder
-- (articles, duplicates, dead_letters, feed_status, manifests) becomes a parenthesized, typed
-- relation. For a table it reads <output>/<folder>/**/*.parquet with Hive
-- partitions and casts every column to its type in schemas/article.py; when the folder has no
-- Parquet file yet it becomes an empty relation with the same columns, so every view (and every
-- query over it) works on an output with no articles yet. The manifests placeholder reads the
-- run manifests <output>/_runs/*.json the same way.
--
-- Views are bound to the files that existed when they were created: reconnect to see new tables.

-- Base tables, one row per Parquet row (columns: schemas/article.py).
CREATE OR REPLACE VIEW articles AS SELECT * FROM {{ articles }};
CREATE OR REPLACE VIEW duplicates AS SELECT * FROM {{ duplicates }};
CREATE OR REPLACE VIEW dead_letters AS SELECT * FROM {{ dead_letters }};
CREATE OR REPLACE VIEW feed_status AS SELECT * FROM {{ feed_status }};

-- runs: one row per run, from its manifest. A run split into chunks (read.max_files_per_run) is one
-- row, summed over its chunks; `chunks` lists the chunk run ids that articles.run_id holds.
CREATE OR REPLACE VIEW runs AS
SELECT
    run_id,
    status,
    started_at,
    finished_at,
    runner,
    profile,
    inputs,
    feeds_file,
    CAST(counters ->> 'inputs' AS BIGINT) AS inputs_read,
    CAST(counters ->> 'articles' AS BIGINT) AS articles,
    CAST(counters ->> 'duplicates' AS BIGINT) AS duplicates,
    CAST(counters ->> 'dead_letters' AS BIGINT) AS dead_letters,
    CAST(counters ->> 'balanced' AS BOOLEAN) AS balanced,
    CAST(coalesce(json_array_length(files), 0) AS BIGINT) AS files,
    versions ->> 'schema' AS schema_version,
    versions ->> 'newsbeam' AS newsbeam_version,
    counters,
    coalesce(chunks, []) AS chunks,
    -- 'run' (inputs read), or 'migrate' / 'compact': a rewrite of committed rows that adds none.
    coalesce(kind, 'run') AS kind
FROM {{ manifests }}
WHERE parent_run_id IS NULL;

-- article_topics: one row per article and assigned topic label, with the label's score.
CREATE OR REPLACE VIEW article_topics AS
SELECT
    a.article_id,
    a.published_date,
    a.language,
    a.source,
    a.title,
    e.label,
    e.score,
    e.terms,
    CAST(len(e.matches) AS INTEGER) AS matches,
    a.taxonomy_version,
    a.run_id
FROM articles AS a, unnest(a.topic_evidence) AS t(e);

-- daily_topics: articles per publication date, language and topic label; share = fraction of
-- that date's articles in that language that carry the label.
CREATE OR REPLACE VIEW daily_topics AS
WITH totals AS (
    SELECT published_date, language, count(*) AS total
    FROM articles
    GROUP BY published_date, language
)
SELECT
    t.published_date AS date,
    t.language,
    t.label,
    count(*) AS articles,
    round(count(*) / any_value(n.total), 4) AS share,
    round(avg(t.score), 2) AS avg_score
FROM article_topics AS t
JOIN totals AS n USING (published_date, language)
GROUP BY t.published_date, t.language, t.label;

-- cluster_members: every copy of a story. Kept articles have role 'canonical' (article_id =
-- cluster_id) or 'member' (a near duplicate kept in articles); rows of the duplicates table have
-- role 'duplicate' and join the cluster of the article they duplicate.
CREATE OR REPLACE VIEW cluster_members AS
WITH kept AS (
    SELECT article_id, any_value(coalesce(nullif(cluster_id, ''), article_id)) AS cluster_id
    FROM articles
    GROUP BY article_id
)
SELECT
    coalesce(nullif(a.cluster_id, ''), a.article_id) AS cluster_id,
    a.article_id,
    CASE WHEN a.article_id = coalesce(nullif(a.cluster_id, ''), a.article_id)
         THEN 'canonical' ELSE 'member' END AS role,
    a.source,
    a.origin,
    a.url,
    a.title,
    a.published_at,
    CAST(NULL AS DOUBLE) AS similarity,
    CAST(NULL AS VARCHAR) AS method,
    a.run_id
FROM articles AS a
UNION ALL
SELECT
    coalesce(k.cluster_id, d.duplicate_of) AS cluster_id,
    d.article_id,
    'duplicate' AS role,
    d.source,
    d.origin,
    d.url,
    d.title,
    d.published_at,
    d.similarity,
    d.method,
    d.run_id
FROM duplicates AS d
LEFT JOIN kept AS k ON k.article_id = d.duplicate_of;

-- clusters: one row per story: its canonical article, how many copies were seen (size, counting
-- the canonical article) and from which sources.
CREATE OR REPLACE VIEW clusters AS
WITH canonical AS (
    SELECT article_id, any_value(title) AS title, any_value(source) AS source,
           any_value(published_date) AS published_date, any_value(language) AS language
    FROM articles
    GROUP BY article_id
)
SELECT
    m.cluster_id,
    any_value(c.title) AS title,
    any_value(c.source) AS canonical_source,
    any_value(c.published_date) AS published_date,
    any_value(c.language) AS language,
    count(*) AS size,
    count(*) FILTER (WHERE m.role = 'duplicate') AS duplicates,
    count(DISTINCT m.source) AS source_count,
    list_sort(list_distinct(list(m.source))) AS sources,
    list_sort(list_distinct(list(m.method))) AS methods,
    min(m.similarity) AS min_similarity
FROM cluster_members AS m
LEFT JOIN canonical AS c ON c.article_id = m.cluster_id
GROUP BY m.cluster_id;

-- feed_health: one row per feed: its latest fetch, totals over all runs and the articles it
-- contributed. healthy = the latest fetch succeeded (ok, not_modified or unchanged).
CREATE OR REPLACE VIEW feed_health AS
WITH latest AS (
    SELECT *
    FROM feed_status
    QUALIFY row_number() OVER (PARTITION BY feed ORDER BY fetched_at DESC, run_id DESC) = 1
),
totals AS (
    SELECT
        feed,
        count(*) AS fetches,
        count(*) FILTER (WHERE outcome IN ('ok', 'not_modified', 'unchanged')) AS successes,
        count(*) FILTER (WHERE outcome IN ('failed', 'dead_letter')) AS failures,
        max(fetched_at) FILTER (WHERE outcome IN ('ok', 'not_modified', 'unchanged')) AS last_success_at,
        sum(entries_seen) AS entries_seen,
        sum(new_articles) AS new_articles,
        sum(bytes) AS bytes,
        round(median(latency_ms), 1) AS median_latency_ms
    FROM feed_status
    GROUP BY feed
),
contributed AS (
    SELECT source, count(*) AS articles FROM articles GROUP BY source
)
SELECT
    l.feed,
    l.url,
    l.final_url,
    l.outcome IN ('ok', 'not_modified', 'unchanged') AS healthy,
    l.outcome AS last_outcome,
    l.http_status AS last_http_status,
    l.error AS last_error,
    l.fetched_at AS last_fetched_at,
    t.last_success_at,
    l.consecutive_failures,
    l.next_attempt_at,
    t.fetches,
    t.successes,
    t.failures,
    round(t.failures / t.fetches, 3) AS failure_rate,
    t.entries_seen,
    t.new_articles,
    coalesce(c.articles, 0) AS articles,
    t.bytes,
    t.median_latency_ms
FROM latest AS l
JOIN totals AS t USING (feed)
LEFT JOIN contributed AS c ON c.source = l.feed;
