//! The shape limits of a query, checked before it runs (the complexity limit, where a list
//! counts its page size times its selection, is async-graphql's).
//!
//! - **Depth**: at most `max_depth` fields on any path. Introspection's `ofType` (a type's
//!   wrapped type: one object, never a list) does not count, so the standard introspection
//!   query of graphql-core, GraphiQL, Apollo and gql — which nests `ofType` 9 levels — is
//!   accepted; a chain of more than [`MAX_OF_TYPE`] `ofType` is refused.
//! - **Introspection** is bounded otherwise: at most one `__schema` and [`MAX_TYPE_LOOKUPS`]
//!   `__type` per operation, no aliases inside them (an alias repeats a subtree's output), and
//!   at most [`MAX_INTROSPECTION_LISTS`] nested lists (`types`, `fields`, `args`, …) on a path,
//!   which the standard query's `__schema.types.fields.args` needs. Its answer is therefore a
//!   bounded image of the (small) schema, whatever the query.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::Name;

/// The longest chain of `ofType` accepted (the standard query nests 9).
pub const MAX_OF_TYPE: usize = 12;
/// `__type` lookups per operation.
pub const MAX_TYPE_LOOKUPS: usize = 10;
/// Nested introspection lists on one path (`__schema.types.fields.args` is 3).
pub const MAX_INTROSPECTION_LISTS: usize = 3;
/// Selections visited (fragments expanded) before a document counts as too large.
const MAX_VISITS: usize = 50_000;

const INTROSPECTION_LISTS: [&str; 8] = [
    "types",
    "fields",
    "args",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "directives",
];

/// Why a document's shape is refused (the message a client sees).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Too many fields on one path.
    #[error("Query is nested too deep: at most {0} levels (introspection's ofType excepted)")]
    TooDeep(usize),
    /// Too long an `ofType` chain.
    #[error("Query is nested too deep: at most {MAX_OF_TYPE} nested ofType")]
    OfTypeChain,
    /// More than one `__schema`, or too many `__type`.
    #[error("introspection: at most one __schema and {MAX_TYPE_LOOKUPS} __type per operation")]
    TooManyIntrospections,
    /// An alias inside `__schema` or `__type`.
    #[error("introspection: aliases are not accepted inside __schema and __type")]
    IntrospectionAlias,
    /// Lists nested too deep inside introspection.
    #[error(
        "introspection: at most {MAX_INTROSPECTION_LISTS} nested lists (types, fields, args, …)"
    )]
    IntrospectionLists,
    /// Fragments expand to too many selections.
    #[error("Query is too large: its fragments expand to more than {MAX_VISITS} selections")]
    TooLarge,
}

/// Checks every operation of `document` against the limits.
pub fn check(document: &ExecutableDocument, max_depth: usize) -> Result<(), ShapeError> {
    for (_, operation) in document.operations.iter() {
        let mut walk = Walk {
            document,
            max_depth,
            visits: 0,
            schemas: 0,
            type_lookups: 0,
            expanding: HashSet::new(),
        };
        walk.selection_set(&operation.node.selection_set.node, Place::default())?;
    }
    Ok(())
}

/// Where a selection set sits.
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    /// Counted fields above.
    depth: usize,
    /// Inside `__schema` / `__type`.
    introspection: bool,
    /// Consecutive `ofType` above.
    of_type: usize,
    /// Introspection lists above.
    lists: usize,
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    max_depth: usize,
    visits: usize,
    schemas: usize,
    type_lookups: usize,
    expanding: HashSet<&'a Name>,
}

impl<'a> Walk<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet, place: Place) -> Result<(), ShapeError> {
        for selection in &set.items {
            self.visits += 1;
            if self.visits > MAX_VISITS {
                return Err(ShapeError::TooLarge);
            }
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let mut inner = place;
                    if place.introspection {
                        if field.alias.is_some() {
                            return Err(ShapeError::IntrospectionAlias);
                        }
                        if name == "ofType" {
                            inner.of_type += 1;
                            if inner.of_type > MAX_OF_TYPE {
                                return Err(ShapeError::OfTypeChain);
                            }
                        } else {
                            inner.of_type = 0;
                            inner.depth += 1;
                        }
                        if INTROSPECTION_LISTS.contains(&name) {
                            inner.lists += 1;
                            if inner.lists > MAX_INTROSPECTION_LISTS {
                                return Err(ShapeError::IntrospectionLists);
                            }
                        }
                    } else {
                        inner.depth += 1;
                        match name {
                            "__schema" => self.schemas += 1,
                            "__type" => self.type_lookups += 1,
                            _ => {}
                        }
                        if self.schemas > 1 || self.type_lookups > MAX_TYPE_LOOKUPS {
                            return Err(ShapeError::TooManyIntrospections);
                        }
                        inner.introspection = matches!(name, "__schema" | "__type");
                    }
                    if inner.depth > self.max_depth {
                        return Err(ShapeError::TooDeep(self.max_depth));
                    }
                    self.selection_set(&field.selection_set.node, inner)?;
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, place)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    // A cycle (refused by validation) or an unknown fragment: not followed.
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    if !self.expanding.insert(name) {
                        continue;
                    }
                    let result = self.selection_set(&fragment.node.selection_set.node, place);
                    self.expanding.remove(name);
                    result?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn shape(query: &str) -> Result<(), ShapeError> {
        check(&parse_query(query).expect("parses"), 12)
    }

    fn of_types(n: usize) -> String {
        format!("{} name {}", "ofType { ".repeat(n), "} ".repeat(n))
    }

    #[test]
    fn given_the_standard_introspection_query_when_checked_then_it_is_accepted() {
        let query = include_str!("../tests/fixtures/graphql_core_3_3_introspection.graphql");
        assert_eq!(shape(query), Ok(()));
        let all =
            include_str!("../tests/fixtures/graphql_core_3_3_introspection_all_options.graphql");
        assert_eq!(shape(all), Ok(()));
    }

    #[test]
    fn given_abusive_introspection_when_checked_then_it_is_refused() {
        let nested_lists =
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert_eq!(shape(nested_lists), Err(ShapeError::IntrospectionLists));
        let aliased = "{ __schema { a: types { name } b: types { name } } }";
        assert_eq!(shape(aliased), Err(ShapeError::IntrospectionAlias));
        let twice = "{ a: __schema { queryType { name } } b: __schema { queryType { name } } }";
        assert_eq!(shape(twice), Err(ShapeError::TooManyIntrospections));
        let chain = format!("{{ __type(name: \"Query\") {{ {} }} }}", of_types(13));
        assert_eq!(shape(&chain), Err(ShapeError::OfTypeChain));
        let fragments = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert_eq!(shape(fragments), Ok(()), "cycles are left to validation");
    }

    #[test]
    fn given_a_query_deeper_than_the_limit_when_checked_then_it_is_refused() {
        let thirteen = format!("{{ {} x {} }}", "a { ".repeat(12), "} ".repeat(12));
        assert_eq!(shape(&thirteen), Err(ShapeError::TooDeep(12)));
        let twelve = format!("{{ {} x {} }}", "a { ".repeat(11), "} ".repeat(11));
        assert_eq!(shape(&twelve), Ok(()));
        // ofType does not count, other introspection fields do.
        let deep = format!(
            "{{ __schema {{ types {{ fields {{ type {{ {} }} }} }} }} }}",
            of_types(9)
        );
        assert_eq!(shape(&deep), Ok(()));
    }

    #[test]
    fn given_fragments_that_expand_exponentially_when_checked_then_the_walk_stops() {
        let mut query = String::from("query { ...F0 }\n");
        for i in 0..30 {
            query.push_str(&format!(
                "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
                n = i + 1
            ));
        }
        query.push_str("fragment F30 on Query { __typename }\n");
        assert_eq!(shape(&query), Err(ShapeError::TooLarge));
    }
}
