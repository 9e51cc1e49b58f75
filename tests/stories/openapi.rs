//! The OpenAPI document: it describes every route the API has, each example
//! request fits its schema, and every answer (the errors too) fits what the
//! document says of it.

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    the_document_is_valid_and_every_operation_answers_as_documented,
    the_router_has_no_method_the_document_does_not_name,
);

/// The document, as a client downloads it (no token needed).
async fn document(app: &TestApp) -> Value {
    let (status, doc) = call(app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    doc
}

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

/// Every (path, method, operation) in the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                all.push((path.clone(), method.to_owned(), op.clone()));
            }
        }
    }
    all
}

/// Checks `instance` against `schema`, whose `$ref`s point into the
/// document's components.
fn check(doc: &Value, schema: &Value, instance: &Value) -> Result<(), String> {
    let root = json!({ "components": doc["components"], "allOf": [schema] });
    let validator = jsonschema::draft202012::new(&root).map_err(|e| format!("bad schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// A `$ref`'s target.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} does not resolve")),
        None => schema,
    }
}

/// Every `$ref` in the document resolves.
fn refs_resolve(doc: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                assert!(
                    doc.pointer(reference.trim_start_matches('#')).is_some(),
                    "{reference} does not resolve"
                );
            }
            map.values().for_each(|v| refs_resolve(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| refs_resolve(doc, v)),
        _ => {}
    }
}

/// The path with each parameter replaced by its documented example.
fn concrete(path: &str, op: &Value) -> String {
    let mut concrete = format!("/api/v1{path}");
    for param in op["parameters"].as_array().into_iter().flatten() {
        if param["in"] == "path" {
            let name = param["name"].as_str().unwrap();
            let example = match &param["example"] {
                Value::String(s) => s.clone(),
                Value::Null => panic!("{path}: parameter {name} has no example"),
                other => other.to_string(),
            };
            concrete = concrete.replace(&format!("{{{name}}}"), &example);
        }
    }
    concrete
}

async fn the_document_is_valid_and_every_operation_answers_as_documented(app: TestApp) {
    drafts_for_rosa_and_marcus(&app, "Rosa").await;
    // A reply, so that the replies and the conversation have items to check.
    reengage::pipeline::replies::receive(
        &app.ctx,
        &reengage::pipeline::replies::Incoming::sms(
            "+12015550123",
            None,
            "thanks, can we talk this week?",
            Some("SMopenapi1"),
        ),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let admin = token(&app, ADMIN).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "bearer auth is described"
    );
    refs_resolve(&doc, &doc);
    // An independent reading of OpenAPI 3.1 (the oas3 crate) takes it whole:
    // every operation's parameters, body, responses and their schemas resolve.
    let spec = oas3::from_json(doc.to_string()).expect("the document reads as OpenAPI 3.1");
    spec.validate_version()
        .expect("a supported OpenAPI version");
    let mut read = 0;
    for (path, method, op) in spec.operations() {
        let what = format!("{method} {path}");
        op.parameters(&spec)
            .unwrap_or_else(|e| panic!("{what}: parameters: {e}"));
        if let Some(body) = op
            .request_body(&spec)
            .unwrap_or_else(|e| panic!("{what}: body: {e}"))
        {
            for media in body.content.values() {
                media
                    .schema(&spec)
                    .unwrap_or_else(|e| panic!("{what}: body schema: {e}"));
            }
        }
        let responses = op.responses(&spec);
        assert!(!responses.is_empty(), "{what}: no responses");
        for (status, response) in responses {
            for media in response.content.values() {
                media
                    .schema(&spec)
                    .unwrap_or_else(|e| panic!("{what} {status}: schema: {e}"));
            }
        }
        read += 1;
    }
    // The check can fail: a message without its fields is not a message.
    let message = json!({ "$ref": "#/components/schemas/Message" });
    assert!(check(&doc, &message, &json!({ "id": "seven" })).is_err());
    let operations = operations(&doc);
    assert!(operations.len() >= 17, "{} operations", operations.len());
    assert_eq!(read, operations.len(), "oas3 reads every operation");
    let mut answered_ok = 0;
    for (path, method, op) in &operations {
        let what = format!("{} {path}", method.to_uppercase());
        assert!(op["operationId"].is_string(), "{what}");
        let documented = op["responses"].as_object().unwrap();
        for (status, response) in documented {
            assert!(
                response["description"].is_string(),
                "{what} {status}: a response needs a description"
            );
        }
        // The example request fits its schema.
        let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
        let example = if body.is_null() {
            None
        } else {
            let example = resolve(&doc, &body)["example"].clone();
            assert!(
                !example.is_null(),
                "{what}: the request body has no example"
            );
            check(&doc, &body, &example).unwrap_or_else(|e| panic!("{what}: example: {e}"));
            Some(example)
        };
        // The operation answers with a documented status, in its schema.
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let url = concrete(path, op);
        let secured = op.get("security") != Some(&json!([{}]));
        for token in [Some(admin.as_str()), None] {
            let (status, answer) = call(&app, method.clone(), &url, token, example.clone()).await;
            if token.is_none() && secured {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} without a token");
            }
            let Some(response) = documented.get(status.as_str()) else {
                panic!("{what} answered {status}, which is not documented: {answer}");
            };
            if let Some(schema) = response["content"]["application/json"]["schema"].as_object() {
                check(&doc, &Value::Object(schema.clone()), &answer)
                    .unwrap_or_else(|e| panic!("{what} {status}: {e}\n{answer}"));
            }
            if status.is_success() {
                answered_ok += 1;
                if let Some(items) = answer["items"].as_array() {
                    assert!(
                        !items.is_empty() || path == "/sends",
                        "{what}: no items to check"
                    );
                }
            } else {
                assert!(
                    answer["error"].is_string() && answer["detail"].is_string(),
                    "{what} {status}: {answer}"
                );
            }
        }
    }
    assert!(
        answered_ok >= 12,
        "most operations succeed with their examples: {answered_ok}"
    );
}

async fn the_router_has_no_method_the_document_does_not_name(app: TestApp) {
    let admin = token(&app, ADMIN).await;
    let doc = document(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let some_op = METHODS.iter().find_map(|m| item.get(*m)).unwrap();
        let url = concrete(path, some_op);
        for method in METHODS {
            if item.get(method).is_some() {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, answer) = call(&app, method.clone(), &url, Some(&admin), None).await;
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {url} is routed but not documented: {answer}"
            );
            assert_eq!(answer["error"], "method_not_allowed");
        }
    }
    // A path the document does not have is not routed either.
    let (status, answer) = call(&app, Method::GET, "/api/v1/coaches", Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"], "not_found");
}

/// The API mounts its handlers only with `routes!`, which documents each one
/// as it routes it: a plain `.route(…)` would route an operation the document
/// does not have.
#[test]
fn every_api_route_is_mounted_with_its_documentation() {
    let source = include_str!("../../src/web/api.rs");
    for undocumented in [
        ".route(",
        ".route_service(",
        ".nest(",
        ".merge(",
        ".fallback(",
    ] {
        assert!(
            !source.contains(undocumented),
            "src/web/api.rs calls `{undocumented}`: mount handlers with `.routes(routes!(…))`"
        );
    }
    // The handlers: the API's, and the document's own.
    let handlers = source.matches("#[utoipa::path(").count()
        + include_str!("../../src/web/openapi.rs")
            .matches("#[utoipa::path(")
            .count();
    let mounted: usize = source
        .split(".routes(routes!(")
        .skip(1)
        .map(|call| call.split("))").next().unwrap().split(',').count())
        .sum();
    assert_eq!(handlers, mounted, "each documented handler is mounted once");
}
