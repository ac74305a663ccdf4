//! Parsed queries by query text. Clients send the same few query texts again and again, and
//! parsing one took about a tenth of a request's CPU (perf, `products(first: 20)`), so each
//! text is parsed once; validation still runs on every request.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::Request;

/// Texts kept before the cache starts over.
const ENTRIES: usize = 500;
/// Longer texts are parsed each time (the cache's memory stays bounded).
const LONGEST_TEXT: usize = 16 * 1024;

/// Parsed documents by query text.
#[derive(Debug, Default)]
pub(crate) struct DocumentCache {
    entries: Mutex<HashMap<String, ExecutableDocument>>,
}

impl DocumentCache {
    /// Gives `request` its parsed document: the cached one, or parsed now and kept. A text
    /// that does not parse is left to the executor, which reports the error.
    pub(crate) fn prepare(&self, request: &mut Request) {
        if request.query.len() > LONGEST_TEXT {
            return;
        }
        if let Some(document) = self.lock().get(&request.query) {
            request.set_parsed_query(document.clone());
            return;
        }
        let Ok(document) = request.parsed_query() else {
            return;
        };
        let document = document.clone();
        let mut entries = self.lock();
        if entries.len() >= ENTRIES {
            entries.clear();
        }
        entries.insert(request.query.clone(), document);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_text_is_parsed_once_and_its_document_reused() {
        let cache = DocumentCache::default();
        let mut first = Request::new("{ products { edges { cursor } } }");
        cache.prepare(&mut first);
        assert_eq!(cache.lock().len(), 1);
        let mut again = Request::new("{ products { edges { cursor } } }");
        cache.prepare(&mut again);
        assert_eq!(cache.lock().len(), 1);
        assert_eq!(
            format!("{:?}", again.parsed_query().unwrap()),
            format!("{:?}", first.parsed_query().unwrap())
        );
    }

    #[test]
    fn a_text_that_does_not_parse_is_not_kept() {
        let cache = DocumentCache::default();
        let mut broken = Request::new("{ products { ");
        cache.prepare(&mut broken);
        assert!(cache.lock().is_empty());
        assert!(broken.parsed_query().is_err());
    }
}
