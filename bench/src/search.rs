//! The search scenario: fills the run's database with `--messages` (1,000,000)
//! messages by SQL (`search_fill.sql`: `INSERT ... SELECT generate_series`, so the
//! generated tsvector and its GIN index are maintained by the inserts, as in
//! production), then times `GET /search/messages` through the running API for a
//! user in 50 of the 2,000 chats: `--queries` requests per kind of query (common word,
//! topic word, rare word, phrases, web-search operators, a second page, one chat),
//! one keep-alive connection, one request at a time. Then `EXPLAIN (ANALYZE, BUFFERS)`
//! of the search statement (src/db/search.sql, the very file the library runs,
//! checked to return the same page as the route) for some of them.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, bail, ensure};
use hyper::{Method, StatusCode};
use serde::Serialize;

use crate::{
    cli::Args,
    deploy::{Deployment, Isolation},
    http::{Conn, bearer},
    mint,
};

const FILL_SQL: &str = include_str!("search_fill.sql");
/// The user the fill puts in the first `MY_CHATS` chats.
const SEARCHER: &str = "00000000-0000-4000-8000-000000000000";
const CHATS: usize = 2000;
const USERS: usize = 10_000;
const MY_CHATS: usize = 50;
const VOCAB: usize = 13_000;
/// Requests per kind not measured (connection and caches warm up).
const WARMUP: usize = 20;

/// The tail word of rank `r` in the fill's vocabulary.
fn tail_word(r: usize) -> String {
    const SYL: [&str; 24] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "be", "da", "fu", "ge", "ho", "ji", "ku",
        "la", "mo", "no", "pe", "ri", "su", "te", "wa", "zo",
    ];
    format!("{}{}{}", SYL[r % 24], SYL[r / 24 % 24], SYL[r / 576 % 24])
}

#[derive(Debug, Clone, Serialize)]
pub struct Kind {
    pub name: String,
    pub q: String,
    /// Extra query string (`&chatId=...`, `&cursor=...`).
    pub extra: String,
    /// Matching messages in the searcher's chats (SQL count).
    pub matches: i64,
    pub results_per_page: usize,
    pub count: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchFigures {
    pub messages: i64,
    pub chats: usize,
    pub users: usize,
    pub searcher_chats: usize,
    pub searcher_messages: i64,
    pub fill_secs: f64,
    pub table_mb: f64,
    pub index_mb: f64,
    pub kinds: Vec<Kind>,
    /// The EXPLAIN'd statement returned the route's first page (ids, in order).
    pub plan_matches_route: bool,
    pub plans: Vec<Plan>,
}

fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn fill(url: &str, messages: u64) -> anyhow::Result<()> {
    let mut child = Command::new("psql")
        .arg(url)
        .args(["-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-v", &format!("messages={messages}")])
        .args(["-v", &format!("chats={CHATS}")])
        .args(["-v", &format!("users={USERS}")])
        .args(["-v", &format!("my_chats={MY_CHATS}")])
        .args(["-v", &format!("vocab={VOCAB}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run psql")?;
    child
        .stdin
        .take()
        .context("psql stdin")?
        .write_all(FILL_SQL.as_bytes())?;
    if !child.wait()?.success() {
        bail!("filling the database failed");
    }
    Ok(())
}

/// Percent-encodes a query-string value.
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The search statement itself: the file that src/db/search.rs runs
/// (`sqlx::query_file!`), not a copy.
const SEARCH_SQL: &str = include_str!("../../src/db/search.sql");

/// The search statement as a prepared statement `s`; its first column is the id.
fn prepare() -> String {
    format!("PREPARE s(uuid, text, uuid, real, timestamptz, uuid, bigint) AS\n{SEARCH_SQL};")
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Fills, measures, explains.
pub async fn run(args: &Args, dep: &Deployment, iso: &Isolation) -> anyhow::Result<SearchFigures> {
    let url = iso.database_url();
    eprintln!("[bench] filling {} messages ...", args.messages);
    let started = Instant::now();
    fill(&url, args.messages)?;
    let fill_secs = started.elapsed().as_secs_f64();
    eprintln!("[bench] filled in {fill_secs:.1} s");
    let count = |sql: &str| -> anyhow::Result<i64> { Ok(psql(&url, sql)?.parse()?) };
    let messages = count("SELECT count(*) FROM messages")?;
    let mine =
        format!("chat_id IN (SELECT chat_id FROM chat_participants WHERE user_id = '{SEARCHER}')");
    let searcher_messages = count(&format!("SELECT count(*) FROM messages WHERE {mine}"))?;
    let table_mb = count("SELECT pg_table_size('messages')")? as f64 / 1e6;
    let index_mb = count("SELECT pg_relation_size('messages_search')")? as f64 / 1e6;
    let one_chat = psql(
        &url,
        &format!(
            "SELECT chat_id FROM chat_participants WHERE user_id = '{SEARCHER}' ORDER BY chat_id LIMIT 1"
        ),
    )?;

    let auth = bearer(&mint::token(&iso.jwt_secret, SEARCHER, 86_400)?)?;
    let mut conn = Conn::new(dep.api);
    let first_common = conn
        .request(Method::GET, "/search/messages?q=the", Some(&auth), None)
        .await?;
    ensure!(
        first_common.status == StatusCode::OK,
        "search answered {}: {}",
        first_common.status,
        String::from_utf8_lossy(&first_common.body)
    );
    let page: serde_json::Value = serde_json::from_slice(&first_common.body)?;
    let cursor = page["nextCursor"].as_str().unwrap_or_default().to_string();
    let route_ids: Vec<String> = page["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|h| h["message"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    let rare = tail_word(5000);
    let kinds_spec: Vec<(&str, String, String)> = vec![
        ("common word (the)", "the".into(), String::new()),
        ("topic word (deploy)", "deploy".into(), String::new()),
        ("rare word", rare.clone(), String::new()),
        (
            "phrase, topic words",
            "\"deploy today\"".into(),
            String::new(),
        ),
        ("phrase, common words", "\"to the\"".into(), String::new()),
        (
            "or / -exclusion",
            "deploy or release -friday".into(),
            String::new(),
        ),
        (
            "second page (the)",
            "the".into(),
            format!("&cursor={}", enc(&cursor)),
        ),
        (
            "one chat (the)",
            "the".into(),
            format!("&chatId={one_chat}"),
        ),
    ];
    let mut kinds = Vec::new();
    for (name, q, extra) in kinds_spec {
        let matches = count(&format!(
            "SELECT count(*) FROM messages WHERE {mine} AND deleted_at IS NULL \
             AND search @@ websearch_to_tsquery('simple', translate({}, '<>', '  ')){}",
            lit(&q),
            if extra.starts_with("&chatId") {
                format!(" AND chat_id = '{one_chat}'")
            } else {
                String::new()
            }
        ))?;
        let path = format!("/search/messages?q={}{extra}", enc(&q));
        let mut times = Vec::with_capacity(args.queries);
        let (mut errors, mut per_page) = (0, 0);
        for i in 0..WARMUP + args.queries {
            let t = Instant::now();
            let r = conn.request(Method::GET, &path, Some(&auth), None).await;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            match r {
                Ok(r) if r.status == StatusCode::OK => {
                    if i == 0 {
                        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
                        per_page = v["results"].as_array().map_or(0, Vec::len);
                    }
                }
                _ => errors += 1,
            }
            if i >= WARMUP {
                times.push(ms);
            }
        }
        times.sort_by(f64::total_cmp);
        let k = Kind {
            name: name.into(),
            q,
            extra,
            matches,
            results_per_page: per_page,
            count: times.len(),
            errors,
            p50_ms: percentile(&times, 0.50),
            p95_ms: percentile(&times, 0.95),
            p99_ms: percentile(&times, 0.99),
            max_ms: times.last().copied().unwrap_or(0.0),
            mean_ms: times.iter().sum::<f64>() / times.len().max(1) as f64,
        };
        eprintln!(
            "[bench] {}: p50 {:.1} ms, p99 {:.1} ms",
            k.name, k.p50_ms, k.p99_ms
        );
        kinds.push(k);
    }

    // The statement, checked against the route, then explained.
    let me = lit(SEARCHER);
    let ids = psql(
        &url,
        &format!(
            "{}\nEXECUTE s({me}, 'the', NULL, NULL, NULL, NULL, 21);",
            prepare()
        ),
    )?;
    let sql_ids: Vec<String> = ids
        .lines()
        .filter_map(|l| l.split('|').next().map(str::to_string))
        .take(20)
        .collect();
    let plan_matches_route = !route_ids.is_empty() && sql_ids == route_ids;
    let mut plans = Vec::new();
    for (name, q) in [
        ("common word (the)", "the".to_string()),
        ("topic word (deploy)", "deploy".into()),
        ("rare word", rare),
        ("phrase, topic words", "\"deploy today\"".into()),
    ] {
        let text = psql(
            &url,
            &format!(
                "{}\nEXPLAIN (ANALYZE, BUFFERS) EXECUTE s({me}, {}, NULL, NULL, NULL, NULL, 21);",
                prepare(),
                lit(&q)
            ),
        )?;
        plans.push(Plan {
            name: name.into(),
            text,
        });
    }
    Ok(SearchFigures {
        messages,
        chats: CHATS,
        users: USERS,
        searcher_chats: MY_CHATS,
        searcher_messages,
        fill_secs,
        table_mb,
        index_mb,
        kinds,
        plan_matches_route,
        plans,
    })
}

/// The human-readable part of the report.
pub fn text(s: &SearchFigures) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {} messages in {} chats of {} users, filled in {:.1} s; table {:.0} MB, search index {:.0} MB",
        s.messages, s.chats, s.users, s.fill_secs, s.table_mb, s.index_mb
    );
    let _ = writeln!(
        out,
        "  searcher in {} chats holding {} messages; ms per request (one connection, sequential):",
        s.searcher_chats, s.searcher_messages
    );
    let _ = writeln!(
        out,
        "    {:<24} {:>8} {:>5} {:>7} {:>7} {:>7} {:>7}  n/err",
        "query", "matches", "page", "p50", "p95", "p99", "max"
    );
    for k in &s.kinds {
        let _ = writeln!(
            out,
            "    {:<24} {:>8} {:>5} {:>7.1} {:>7.1} {:>7.1} {:>7.1}  {}/{}",
            k.name,
            k.matches,
            k.results_per_page,
            k.p50_ms,
            k.p95_ms,
            k.p99_ms,
            k.max_ms,
            k.count,
            k.errors
        );
    }
    let _ = writeln!(
        out,
        "  explained statement returns the route's first page: {}",
        s.plan_matches_route
    );
    for p in &s.plans {
        let _ = writeln!(out, "  EXPLAIN (ANALYZE, BUFFERS), {}:", p.name);
        for l in p.text.lines() {
            let _ = writeln!(out, "    {l}");
        }
    }
    out
}
