//! Every `Authorization` header gets the same answer from REST and GraphQL, on both stores: the
//! accepted forms of a valid access token work on both, and every other header — another form,
//! or a forged, expired, refresh or foreign-key token, or a well-signed token of an account that
//! does not exist — is a 401 on REST and `UNAUTHENTICATED` on GraphQL.

use std::time::Duration;

use eventshop_tests::api::TestApi;
use eventshop_tests::graphql::TestGraphql;
use eventshop_tests::TestStore;
use eventstore_config::Settings;
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SECRET: &str = "a test signing key of at least 32 bytes";

/// How a header is built from the account's tokens.
enum Token {
    Access,
    Refresh,
    Expired,
    ForeignKey,
    Forged,
    UnknownAccount,
    NotAnAccountId,
}

struct Case {
    what: &'static str,
    /// The `Authorization` headers, with `{}` standing for the token.
    headers: &'static [&'static [u8]],
    token: Token,
    accepted: bool,
}

const fn case(what: &'static str, headers: &'static [&'static [u8]], accepted: bool) -> Case {
    Case {
        what,
        headers,
        token: Token::Access,
        accepted,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("Bearer", &[b"Bearer {}"], true),
        case("bearer", &[b"bearer {}"], true),
        case("BEARER", &[b"BEARER {}"], true),
        case("mixed case", &[b"bEaReR {}"], true),
        case("two spaces", &[b"Bearer  {}"], true),
        case("a tab", &[b"Bearer\t{}"], true),
        case("surrounding blanks", &[b"  Bearer {}  "], true),
        case("no header", &[], false),
        case("empty", &[b""], false),
        case("scheme only", &[b"Bearer"], false),
        case("scheme and a blank", &[b"Bearer "], false),
        case("no blank", &[b"Bearer{}"], false),
        case("token alone", &[b"{}"], false),
        case("Basic", &[b"Basic {}"], false),
        case("Token", &[b"Token {}"], false),
        case("colon", &[b"Bearer: {}"], false),
        case("two tokens", &[b"Bearer {} {}"], false),
        case("comma", &[b"Bearer {},"], false),
        case("quoted", &[b"Bearer \"{}\""], false),
        case("non-ASCII", &[b"Bearer {}\xc3\xa9"], false),
        case("two headers", &[b"Bearer {}", b"Bearer {}"], false),
        case("garbage token", &[b"Bearer not.a.jwt"], false),
        Case {
            what: "refresh token",
            headers: &[b"Bearer {}"],
            token: Token::Refresh,
            accepted: false,
        },
        Case {
            what: "expired token",
            headers: &[b"Bearer {}"],
            token: Token::Expired,
            accepted: false,
        },
        Case {
            what: "another key's token",
            headers: &[b"Bearer {}"],
            token: Token::ForeignKey,
            accepted: false,
        },
        Case {
            what: "forged signature",
            headers: &[b"Bearer {}"],
            token: Token::Forged,
            accepted: false,
        },
        Case {
            what: "a well-signed token of an account that does not exist",
            headers: &[b"Bearer {}"],
            token: Token::UnknownAccount,
            accepted: false,
        },
        Case {
            what: "a well-signed token whose subject is not an account id",
            headers: &[b"Bearer {}"],
            token: Token::NotAnAccountId,
            accepted: false,
        },
    ]
}

fn header(template: &[u8], token: &str) -> HeaderValue {
    let text = String::from_utf8_lossy(template).into_owned();
    let mut bytes = Vec::new();
    let mut parts = template.split(|b| *b == b'{');
    bytes.extend_from_slice(parts.next().unwrap_or_default());
    for part in parts {
        let rest = part.strip_prefix(b"}").unwrap_or(part);
        bytes.extend_from_slice(token.as_bytes());
        bytes.extend_from_slice(rest);
    }
    HeaderValue::from_bytes(&bytes).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

async fn every_form_gets_the_same_answer_from_rest_and_graphql(mut test: TestStore) {
    test.settings.jwt_secret = Some(SECRET.into());
    let settings = test.settings.clone();
    let gql = TestGraphql::start(TestApi::start(test).await, query_api::Options::default()).await;
    let api = &gql.api;
    let ann = api.register("customer").await;
    gql.project().await;

    let expired = access::Tokens::new(
        SECRET.as_bytes(),
        &Settings {
            access_token_ttl_secs: 0,
            ..settings.clone()
        },
    )
    .issue(&ann.id)
    .expect("token")
    .access_token;
    let foreign = access::Tokens::new(b"another signing key, 32 bytes long", &settings)
        .issue(&ann.id)
        .expect("token")
        .access_token;
    let signer = access::Tokens::new(SECRET.as_bytes(), &settings);
    let unknown = signer
        .issue(&uuid::Uuid::now_v7().to_string())
        .expect("token")
        .access_token;
    let not_an_id = signer.issue("system").expect("token").access_token;
    let forged = {
        let (signed, signature) = ann.token.rsplit_once('.').expect("a JWT");
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        format!("{signed}.{flipped}{}", &signature[1..])
    };
    tokio::time::sleep(Duration::from_millis(1100)).await; // `expired` is now past its `exp`

    for case in cases() {
        let token = match case.token {
            Token::Access => ann.token.as_str(),
            Token::Refresh => ann.refresh.as_str(),
            Token::Expired => expired.as_str(),
            Token::ForeignKey => foreign.as_str(),
            Token::Forged => forged.as_str(),
            Token::UnknownAccount => unknown.as_str(),
            Token::NotAnAccountId => not_an_id.as_str(),
        };
        let headers: Vec<HeaderValue> = case.headers.iter().map(|h| header(h, token)).collect();

        let mut rest = api
            .client
            .post(format!("{}/api/v1/accounts/{}/deposits", api.base, ann.id))
            .json(&json!({"amount": 1, "currency": "EUR"}));
        let mut graphql = api
            .client
            .post(&gql.endpoint)
            .json(&json!({"query": "{ me { id } }"}));
        for value in &headers {
            rest = rest.header("authorization", value.clone());
            graphql = graphql.header("authorization", value.clone());
        }
        let rest = rest.send().await.expect("REST request sent");
        let rest_status = rest.status();
        let rest_body: Value = rest.json().await.unwrap_or(Value::Null);
        let graphql: Value = graphql
            .send()
            .await
            .expect("GraphQL request sent")
            .json()
            .await
            .expect("GraphQL answers JSON");

        if case.accepted {
            assert_eq!(
                rest_status,
                StatusCode::CREATED,
                "{}: REST {rest_body}",
                case.what
            );
            assert_eq!(
                graphql["data"]["me"]["id"],
                ann.id.as_str(),
                "{}: GraphQL {graphql}",
                case.what
            );
        } else {
            assert_eq!(
                rest_status,
                StatusCode::UNAUTHORIZED,
                "{}: REST {rest_body}",
                case.what
            );
            assert!(
                rest_body["errors"][0]["message"].is_string(),
                "{}: REST {rest_body}",
                case.what
            );
            assert_eq!(
                graphql["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{}: GraphQL {graphql}",
                case.what
            );
            assert!(
                graphql["data"].is_null(),
                "{}: GraphQL {graphql}",
                case.what
            );
        }
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_form_gets_the_same_answer_from_rest_and_graphql() {
        super::every_form_gets_the_same_answer_from_rest_and_graphql(
            eventshop_tests::TestStore::postgres().await,
        )
        .await;
    }
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_form_gets_the_same_answer_from_rest_and_graphql() {
        super::every_form_gets_the_same_answer_from_rest_and_graphql(
            eventshop_tests::TestStore::sqlite().await,
        )
        .await;
    }
}
