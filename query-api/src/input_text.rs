//! The text rule (`domain::text`) for everything a request passes in: every string in a field's
//! or directive's arguments (inside lists and input objects too: `filter.nameContains`, `after`
//! cursors, ids), in variable defaults and in the request's variables, checked once before the
//! request runs. A string with NUL or another control character is a `BAD_USER_INPUT` that
//! names the argument or variable, on both stores alike (PostgreSQL cannot store NUL, SQLite
//! can).

use async_graphql::parser::types::{
    Directive, ExecutableDocument, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{Positioned, ServerError, Variables};
use async_graphql_value::{ConstValue, Name, Value};

use crate::error::Code;

/// Every refused string of `document` and `variables`, as errors naming where it was.
pub(crate) fn check(document: &ExecutableDocument, variables: &Variables) -> Vec<ServerError> {
    let mut refused = Vec::new();
    for (name, value) in variables.iter() {
        const_value(value, &format!("${name}"), "variable", &mut refused);
    }
    for (_, operation) in document.operations.iter() {
        let operation = &operation.node;
        for definition in &operation.variable_definitions {
            variable_default(definition, &mut refused);
        }
        directives(&operation.directives, &mut refused);
        selection_set(&operation.selection_set.node, &mut refused);
    }
    for fragment in document.fragments.values() {
        directives(&fragment.node.directives, &mut refused);
        selection_set(&fragment.node.selection_set.node, &mut refused);
    }
    refused
        .into_iter()
        .map(|(place, kind, error)| {
            let mut server_error = ServerError::new(
                format!(
                    "{kind} `{place}` {error}: text may not hold control characters other than \
                     tab, line feed and carriage return"
                ),
                None,
            );
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", Code::BadUserInput.as_str());
            extensions.set(kind, place);
            server_error.extensions = Some(extensions);
            server_error
        })
        .collect()
}

type Refused = Vec<(String, &'static str, domain::TextError)>;

fn variable_default(definition: &Positioned<VariableDefinition>, refused: &mut Refused) {
    let definition = &definition.node;
    if let Some(default) = &definition.default_value {
        let place = format!("${}", definition.name.node);
        const_value(&default.node, &place, "variable", refused);
    }
    directives(&definition.directives, refused);
}

fn selection_set(set: &SelectionSet, refused: &mut Refused) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                for (name, value) in &field.arguments {
                    let place = format!("{}.{}", field.name.node, name.node);
                    value_of(&value.node, &place, refused);
                }
                directives(&field.directives, refused);
                selection_set(&field.selection_set.node, refused);
            }
            Selection::FragmentSpread(spread) => directives(&spread.node.directives, refused),
            Selection::InlineFragment(inline) => {
                directives(&inline.node.directives, refused);
                selection_set(&inline.node.selection_set.node, refused);
            }
        }
    }
}

fn directives(directives: &[Positioned<Directive>], refused: &mut Refused) {
    for directive in directives {
        for (name, value) in &directive.node.arguments {
            let place = format!("@{}.{}", directive.node.name.node, name.node);
            value_of(&value.node, &place, refused);
        }
    }
}

fn key(place: &str, name: &Name) -> String {
    format!("{place}.{name}")
}

fn value_of(value: &Value, place: &str, refused: &mut Refused) {
    match value {
        Value::String(text) => {
            if let Err(error) = domain::text::check(text) {
                refused.push((place.to_owned(), "argument", error));
            }
        }
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                value_of(item, &format!("{place}[{i}]"), refused);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                value_of(item, &key(place, name), refused);
            }
        }
        _ => {}
    }
}

fn const_value(value: &ConstValue, place: &str, kind: &'static str, refused: &mut Refused) {
    match value {
        ConstValue::String(text) => {
            if let Err(error) = domain::text::check(text) {
                refused.push((place.to_owned(), kind, error));
            }
        }
        ConstValue::List(items) => {
            for (i, item) in items.iter().enumerate() {
                const_value(item, &format!("{place}[{i}]"), kind, refused);
            }
        }
        ConstValue::Object(fields) => {
            for (name, item) in fields {
                const_value(item, &key(place, name), kind, refused);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn refused(query: &str, variables: serde_json::Value) -> Vec<String> {
        let document = parse_query(query).expect("parses");
        check(&document, &Variables::from_json(variables))
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn given_a_nul_in_an_inline_argument_or_input_object_when_checked_then_the_argument_is_named() {
        let errors = refused(
            r#"{ products(after: "a\u0000", filter: { nameContains: "x\u001b" }) { edges { cursor } } }"#,
            serde_json::json!({}),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("argument `products.after`"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("argument `products.filter.nameContains`"));
    }

    #[test]
    fn given_a_nul_in_a_variable_or_a_fragment_when_checked_then_it_is_refused() {
        let errors = refused(
            r#"query($f: ProductFilter, $ids: [ID!] = ["ok", "b\u0000"]) { ...F }
               fragment F on Query { can(subject: "\u0007", action: "get", resourceType: "x", resourceId: "y") }"#,
            serde_json::json!({"f": {"nameContains": "nul\u{0}"}}),
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("variable `$f.nameContains`"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("variable `$ids[1]`"), "{errors:?}");
        assert!(
            errors[2].starts_with("argument `can.subject`"),
            "{errors:?}"
        );
    }

    #[test]
    fn given_ordinary_text_with_line_breaks_when_checked_then_nothing_is_refused() {
        let errors = refused(
            r#"query($s: String = "a\tb") { policies(subject: "Grüße\n🫖") { subject } }"#,
            serde_json::json!({"s": "line\r\nline"}),
        );
        assert!(errors.is_empty(), "{errors:?}");
    }
}
