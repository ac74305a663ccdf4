//! The eventshop read side: the async-graphql schema at `/graphql` over the projectors' read
//! models, with temporal (`asOf`, `atVersion`) and audit queries. May depend on `domain` and
//! `eventstore-config`, never on the write side. Not built yet: see the GraphQL issue.
#![forbid(unsafe_code)]
