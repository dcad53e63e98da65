//! `GET /search/messages` against real services: messages go through the pipeline
//! (API → RabbitMQ → worker → PostgreSQL), then are searched over REST: web-search
//! syntax, only the caller's current chats, edits and deletes, snippets, keyset pages
//! and every error.

mod common;

use std::collections::HashSet;

use common::{TestApp, TestUser, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

/// Polls `probe` until it yields `Some` (the worker applied what we wait for).
use common::poll::until;

/// Percent-encodes a query-string value.
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn search_raw(app: &TestApp, user: &TestUser, query: &str) -> (u16, Value) {
    app.call(
        "GET",
        &format!("/search/messages?{query}"),
        Some(&user.token),
        None,
    )
    .await
}

/// A successful search for `q`; returns the page.
async fn search(app: &TestApp, user: &TestUser, q: &str, extra: &str) -> Value {
    let (s, page) = search_raw(app, user, &format!("q={}{extra}", enc(q))).await;
    assert_eq!(s, 200, "{q}: {page}");
    page
}

/// The contents found for `q`, in result order.
async fn found(app: &TestApp, user: &TestUser, q: &str) -> Vec<String> {
    search(app, user, q, "").await["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["message"]["content"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Sends each content in order and waits until the chat holds them all.
async fn send_all(app: &TestApp, user: &TestUser, chat: Uuid, contents: &[&str]) {
    let before = app.message_count(chat).await;
    for c in contents {
        let (s, r) = app.send(user, chat, c, Uuid::new_v4()).await;
        assert_eq!(s, 202, "{r}");
    }
    app.wait_messages(chat, before + contents.len() as i64)
        .await;
}

async fn history(app: &TestApp, user: &TestUser, chat: Uuid) -> Vec<Value> {
    let path = format!("/chats/{chat}/messages?limit=100");
    let (s, page) = app.call("GET", &path, Some(&user.token), None).await;
    assert_eq!(s, 200, "{page}");
    page["messages"].as_array().cloned().unwrap_or_default()
}

async fn id_of(app: &TestApp, user: &TestUser, chat: Uuid, content: &str) -> String {
    history(app, user, chat)
        .await
        .into_iter()
        .find(|m| m["content"] == content)
        .and_then(|m| m["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no message {content:?}"))
}

/// Web-search text of every odd kind: PostgreSQL parses all of it without error.
#[rustfmt::skip]
const ODD_QUERIES: &[&str] = &[
    "!!!", "\"", "\"\"", "-", "--x", "or", "or or", "a:*", "'", "\\", "😀", "x & y | !z",
    "foo <-> bar", "(a", "a)", "-bold", "* ? %", "<b>", "ünïcödé ñ", "\u{7f}\u{1}",
];

fn code(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["code"].as_str().unwrap_or(""))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn finds_words_and_web_search_syntax_best_match_first() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    const M: [&str; 5] = [
        "Deploy the release on Friday",
        "the release notes are ready",
        "lunch on friday?",
        "deploying tomorrow",
        "release release release: the release train",
    ];
    send_all(&app, &a, chat, &M).await;
    for (q, want) in [
        ("deploy", &[0][..]),            // whole words: no stemming
        ("FRIDAY", &[0, 2]),             // case and punctuation ignored
        ("\"release notes\"", &[1]),     // a phrase: adjacent words...
        ("\"notes release\"", &[]),      // ...in order
        ("release -friday", &[1, 4]),    // -word excludes
        ("lunch or deploy", &[0, 2]),    // or
        ("deploy friday release", &[0]), // every word must match
    ] {
        let want = sorted(want.iter().map(|i| M[*i].to_string()).collect());
        assert_eq!(sorted(found(&app, &b, q).await), want, "{q}");
    }
    let release = found(&app, &a, "release").await;
    assert_eq!(release.len(), 3);
    assert_eq!(release[0], M[4], "the most occurrences rank first");

    // The message is a full Message v2, as history shows it; the snippet marks the match.
    let page = search(&app, &b, "deploy", "").await;
    assert_eq!(page["nextCursor"], Value::Null);
    let hit = &page["results"][0];
    let shown = history(&app, &b, chat)
        .await
        .into_iter()
        .find(|m| m["id"] == hit["message"]["id"])
        .expect("in history");
    assert_eq!(hit["message"], shown);
    assert_eq!(hit["snippet"], "<mark>Deploy</mark> the release on Friday");
    for f in ["reactions", "mentions", "attachments", "status", "replyTo"] {
        assert!(hit["message"].get(f).is_some(), "Message v2 field {f}");
    }
}

#[tokio::test]
async fn snippets_are_html_safe_and_odd_queries_never_fail() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    let long = format!(
        "{} the needle is here {}",
        "filler words ".repeat(40),
        "more padding ".repeat(40)
    );
    send_all(
        &app,
        &a,
        chat,
        &[
            "<b>bold</b> & 'quote' \"x\" a<b",
            "<script>alert(1)</script> hi",
            &long,
        ],
    )
    .await;
    let page = search(&app, &a, "bold", "").await;
    assert_eq!(
        page["results"][0]["snippet"],
        "&lt;b&gt;<mark>bold</mark>&lt;/b&gt; &amp; &#39;quote&#39; &quot;x&quot; a&lt;b"
    );
    // Angle brackets are no tags to the index: what they hold is searchable.
    let page = search(&app, &a, "alert", "").await;
    assert_eq!(
        page["results"][0]["snippet"],
        "&lt;script&gt;<mark>alert</mark>(1)&lt;/script&gt; hi"
    );
    assert_eq!(found(&app, &a, "<b>").await.len(), 1, "b, as a word");
    let page = search(&app, &a, "needle", "").await;
    let snippet = page["results"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>needle</mark>"), "{snippet}");
    assert!(
        snippet.len() < long.len() / 2,
        "a long message is cut to fragments: {snippet}"
    );

    // Whatever web-search text comes in, PostgreSQL parses it: 200, never 500.
    for q in ODD_QUERIES {
        let (s, body) = search_raw(&app, &a, &format!("q={}", enc(q))).await;
        assert_eq!(s, 200, "{q:?}: {body}");
        assert!(body["results"].is_array(), "{q:?}: {body}");
    }
    assert_eq!(found(&app, &a, "-bold").await.len(), 2, "only exclusions");
}

#[tokio::test]
async fn only_the_callers_current_chats() {
    let app = spawn_app().await;
    let (a, b, c, d, e) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
        app.register("d").await,
        app.register("e").await,
    );
    let ab = app.direct_chat(&a, &b).await;
    let cd = app.direct_chat(&c, &d).await;
    send_all(&app, &a, ab, &["secret plan alpha"]).await;
    send_all(&app, &c, cd, &["secret plan beta"]).await;
    assert_eq!(found(&app, &a, "secret").await, ["secret plan alpha"]);
    assert_eq!(found(&app, &b, "secret").await, ["secret plan alpha"]);
    assert_eq!(found(&app, &c, "secret").await, ["secret plan beta"]);
    assert!(found(&app, &e, "secret").await.is_empty());

    // A participant removed from a group no longer finds its messages.
    let group = app.group_chat(&a, &[&b, &e]).await;
    send_all(&app, &a, group, &["roadmap zebra crossing"]).await;
    assert_eq!(found(&app, &e, "zebra").await, ["roadmap zebra crossing"]);
    let remove = format!("/chats/{group}/participants/{}", e.id);
    let r = app.call("DELETE", &remove, Some(&a.token), None).await;
    assert_eq!(r.0, 204, "{}", r.1);
    assert!(found(&app, &e, "zebra").await.is_empty());
    let r = search_raw(&app, &e, &format!("q=zebra&chatId={group}")).await;
    assert_eq!(code(&r), (403, "forbidden"));
    assert_eq!(found(&app, &b, "zebra").await, ["roadmap zebra crossing"]);
}

#[tokio::test]
async fn edits_are_searched_as_edited_and_deletes_vanish() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    send_all(&app, &a, chat, &["colour draft", "ephemeral words here"]).await;
    assert_eq!(found(&app, &b, "colour").await, ["colour draft"]);

    let id = id_of(&app, &a, chat, "colour draft").await;
    let path = format!("/chats/{chat}/messages/{id}");
    let r = app
        .call(
            "PATCH",
            &path,
            Some(&a.token),
            Some(json!({"content": "color final"})),
        )
        .await;
    assert_eq!(r.0, 202, "{}", r.1);
    until("the edit", || async {
        history(&app, &a, chat)
            .await
            .into_iter()
            .find(|m| m["id"] == id.as_str() && m["content"] == "color final")
    })
    .await;
    assert!(
        found(&app, &b, "colour").await.is_empty(),
        "the old words are gone"
    );
    let page = search(&app, &b, "final", "").await;
    assert_eq!(page["results"][0]["message"]["id"], id.as_str());
    assert!(page["results"][0]["message"]["editedAt"].is_string());
    assert_eq!(page["results"][0]["snippet"], "color <mark>final</mark>");

    let gone = id_of(&app, &a, chat, "ephemeral words here").await;
    let path = format!("/chats/{chat}/messages/{gone}");
    let r = app.call("DELETE", &path, Some(&a.token), None).await;
    assert_eq!(r.0, 202, "{}", r.1);
    until("the delete", || async {
        history(&app, &a, chat)
            .await
            .into_iter()
            .find(|m| m["id"] == gone.as_str() && m["deletedAt"].is_string())
    })
    .await;
    assert!(found(&app, &b, "ephemeral").await.is_empty());
    assert!(
        found(&app, &a, "-nothing")
            .await
            .iter()
            .all(|c| !c.is_empty())
    );
}

#[tokio::test]
async fn pages_follow_each_other_without_duplicates_or_gaps() {
    let app = spawn_app().await;
    let (a, b) = (app.register("a").await, app.register("b").await);
    let chat = app.direct_chat(&a, &b).await;
    // Three ranks (1, 2 or 3 occurrences), many ties within each: ties go by time, id.
    let contents: Vec<String> = (0..25)
        .map(|i| format!("{} item {i}", "pagination ".repeat(i % 3 + 1)))
        .collect();
    let refs: Vec<&str> = contents.iter().map(String::as_str).collect();
    send_all(&app, &a, chat, &refs).await;

    let all = search(&app, &b, "pagination", "&limit=100").await;
    let all_ids: Vec<Value> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["id"].clone())
        .collect();
    assert_eq!(all_ids.len(), 25);
    assert_eq!(all["nextCursor"], Value::Null);
    let first = all["results"][0]["message"]["content"].as_str().unwrap();
    assert!(
        first.starts_with("pagination pagination pagination"),
        "{first}"
    );

    let mut paged: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let extra = match &cursor {
            Some(c) => format!("&limit=7&cursor={}", enc(c)),
            None => "&limit=7".into(),
        };
        let page = search(&app, &b, "pagination", &extra).await;
        let results = page["results"].as_array().unwrap();
        assert!(results.len() <= 7);
        paged.extend(results.iter().map(|r| r["message"]["id"].clone()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let unique: HashSet<String> = paged.iter().map(Value::to_string).collect();
    assert_eq!(unique.len(), paged.len(), "no duplicates");
    assert_eq!(paged, all_ids, "the pages are the one list, cut");

    // A page filter by chat: other chats' matches stay out.
    let other = app.group_chat(&a, &[&b]).await;
    send_all(&app, &a, other, &["pagination elsewhere"]).await;
    assert_eq!(
        found(&app, &b, "pagination").await.len(),
        20,
        "default limit"
    );
    let page = search(&app, &b, "pagination", &format!("&chatId={other}")).await;
    let results = page["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["message"]["chatId"], json!(other));
    let page = search(&app, &b, "pagination", &format!("&chatId={chat}&limit=100")).await;
    assert_eq!(page["results"].as_array().unwrap().len(), 25);
}

#[tokio::test]
async fn bad_requests_answer_in_the_contract_shape() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    let ab = app.direct_chat(&a, &b).await;
    let bc = app.direct_chat(&b, &c).await;
    let long = "x".repeat(201);
    for query in [
        "",
        "q=",
        "q=%20%20%20",
        &format!("q={long}"),
        "q=ok&limit=0",
        "q=ok&limit=101",
        "q=ok&limit=ten",
        "q=ok&chatId=not-a-uuid",
        "q=ok&cursor=garbage",
        "q=ok&cursor=",
        "q=a%00b",
    ] {
        let r = search_raw(&app, &a, query).await;
        assert_eq!(code(&r), (400, "validation_failed"), "{query}: {}", r.1);
        assert_eq!(r.1["statusCode"], 400);
        assert!(r.1["message"].is_string());
    }
    // Bytes that are not UTF-8 are read as U+FFFD (found nowhere), not refused.
    let r = search_raw(&app, &a, "q=%FF").await;
    assert_eq!(r.0, 200, "{}", r.1);
    let ok = search_raw(&app, &a, &format!("q={}", "x".repeat(200))).await;
    assert_eq!(ok.0, 200, "200 characters are fine: {}", ok.1);
    let r = search_raw(&app, &a, &format!("q=ok&chatId={}", Uuid::new_v4())).await;
    assert_eq!(code(&r), (404, "not_found"));
    let r = search_raw(&app, &a, &format!("q=ok&chatId={bc}")).await;
    assert_eq!(code(&r), (403, "forbidden"));
    let r = search_raw(&app, &a, &format!("q=ok&chatId={ab}")).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let r = app.call("GET", "/search/messages?q=ok", None, None).await;
    assert_eq!(code(&r), (401, "unauthorized"));
}
