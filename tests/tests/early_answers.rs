//! Answers given before the request body was read (401, 404, 405, 413, 415, on REST and
//! GraphQL) reach the client. The server reads the unread rest of the body before it answers,
//! so it never closes a connection with the client's bytes unread, which would make the kernel
//! reset it and the client see a broken connection instead of the answer.

use std::time::Duration;

use eventshop_tests::graphql::TestGraphql;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `method path` with a `length`-byte body in slow pieces (so the server has answered
/// long before the body is complete), then reads the whole answer. Returns its status code,
/// or the I/O error that broke the exchange.
async fn slow_send(
    host: &str,
    method: &str,
    path: &str,
    headers: &str,
    length: usize,
) -> Result<u16, String> {
    let mut stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n{headers}\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let piece = vec![b'x'; 16 * 1024];
    let mut sent = 0;
    while sent < length {
        let n = piece.len().min(length - sent);
        stream
            .write_all(&piece[..n])
            .await
            .map_err(|e| format!("writing the body at byte {sent}: {e}"))?;
        sent += n;
        // The server answers after the first piece; this pause lets that answer arrive.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_body_still_arriving_when_the_server_answers_early_then_the_client_gets_the_answer()
{
    let gql = TestGraphql::sqlite().await;
    let customer = gql.api.register("customer").await;
    let rest = gql
        .api
        .base
        .strip_prefix("http://")
        .expect("http")
        .to_owned();
    let graphql = gql
        .endpoint
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .expect("http")
        .to_owned();
    let json = "Content-Type: application/json\r\n";
    let auth = format!("Authorization: Bearer {}\r\n{json}", customer.token);
    let deposits = format!("/api/v1/accounts/{}/deposits", customer.id);
    let size = 512 * 1024; // over the 64 KiB limit, under what the server reads on
    let cases: Vec<(&str, &str, &str, String, usize, u16)> = vec![
        // No token: 401 before the body.
        (
            &rest,
            "POST",
            "/api/v1/products",
            json.to_owned(),
            size,
            401,
        ),
        // Not JSON: 415 before the body.
        (
            &rest,
            "POST",
            "/api/v1/orders",
            format!(
                "Authorization: Bearer {}\r\nContent-Type: text/plain\r\n",
                customer.token
            ),
            60 * 1024, // under the limit: refused for its type before it is read
            415,
        ),
        // Declared too large: 413 before the body.
        (&rest, "POST", &deposits, auth.clone(), size, 413),
        // No such route, or not this method.
        (&rest, "POST", "/api/v1/nowhere", json.to_owned(), size, 404),
        (&rest, "PATCH", "/api/v1/orders", auth.clone(), size, 405),
        // GraphQL: too large, not JSON.
        (&graphql, "POST", "/graphql", json.to_owned(), size, 413),
        (
            &graphql,
            "POST",
            "/graphql",
            "Content-Type: text/plain\r\n".to_owned(),
            size,
            415,
        ),
    ];
    for (host, method, path, headers, size, expected) in cases {
        for round in 0..3 {
            let got = slow_send(host, method, path, &headers, size).await;
            assert_eq!(
                got,
                Ok(expected),
                "{method} {path} (round {round}) with a {size}-byte body"
            );
        }
    }
}
