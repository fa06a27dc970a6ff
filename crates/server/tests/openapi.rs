//! The OpenAPI document: 3.1, valid (openapi-spec-validator, PyPI), every
//! documented operation routed, every routed path documented, the error
//! codes listed, and real answers valid against the documented schemas.

use std::io::Write;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hubsearch_server::app;
use hubsearch_server::error::Code;
use serde_json::Value;
use tower::ServiceExt;

#[allow(dead_code)]
mod common;
use common::{hub, Hub};

async fn call(h: &Hub, method: Method, uri: &str) -> (StatusCode, Value) {
    let body = if method == Method::POST || method == Method::PUT {
        Body::from("{}")
    } else {
        Body::empty()
    };
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let resp = app(h.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

fn python(script: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (scripts/setup installs openapi-spec-validator)")
}

#[tokio::test]
async fn the_document_is_valid_complete_and_true() {
    let h = hub();
    let (s, doc) = call(&h, Method::GET, "/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    // Every documented operation is routed: none reaches the router's
    // fallbacks (`not_found` for no route, `method_not_allowed`).
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let uri = path
            .replace("{id}", "Helsinki-NLP/opus-mt-en-de")
            .replace("{author}", "Helsinki-NLP")
            .replace("{revision}", "main");
        for (method, _) in item.as_object().unwrap() {
            let m: Method = method.to_uppercase().parse().unwrap();
            let (s, v) = call(&h, m, &uri).await;
            let code = v["error"]["code"].as_str().unwrap_or("");
            assert!(
                code != "not_found" && code != "method_not_allowed",
                "{method} {path} is documented but not routed: {s} {v}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 18, "{operations} operations");
    // Every routed path is documented: the router is built from the
    // documented handlers, and the wildcard routes stand for these.
    for (_, documented) in hubsearch_server::openapi::WILDCARD_ROUTES {
        for p in *documented {
            assert!(paths.contains_key(*p), "{p} is routed but not documented");
        }
    }
    for p in [
        "/v1/search",
        "/v1/listings",
        "/v1/models",
        "/v1/calls",
        "/api/models",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    // Every filter is documented on the reads that take filters.
    let names = |path: &str| -> Vec<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    for path in ["/v1/search", "/v1/listings", "/v1/models/{id}/similar"] {
        let documented = names(path);
        for key in hubsearch_server::filters::FILTER_KEYS {
            assert!(documented.contains(&key.to_string()), "{path}: {key}");
        }
    }
    assert!(names("/v1/search").contains(&"semantic_ratio".to_string()));
    // The error codes are the codes! table's.
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
        ["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let want: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, want);
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );

    // Real answers, validated against the documented schemas.
    let mut samples = serde_json::Map::new();
    let mut sample = |schema: &str, v: Value| {
        samples.insert(schema.to_string(), v);
    };
    sample(
        "SearchPage",
        call(
            &h,
            Method::GET,
            "/v1/search?q=bert&explain=true&facets=true",
        )
        .await
        .1,
    );
    sample(
        "ListingPage",
        call(&h, Method::GET, "/v1/listings?sort=fair&per_page=3")
            .await
            .1,
    );
    sample(
        "SimilarPage",
        call(
            &h,
            Method::GET,
            "/v1/models/Helsinki-NLP/opus-mt-en-de/similar",
        )
        .await
        .1,
    );
    sample(
        "ModelPage",
        call(&h, Method::GET, "/v1/models/Helsinki-NLP/opus-mt-en-de")
            .await
            .1,
    );
    sample(
        "HfModel",
        call(&h, Method::GET, "/api/models/Helsinki-NLP/opus-mt-en-de")
            .await
            .1,
    );
    sample(
        "ExposureStats",
        call(&h, Method::GET, "/v1/stats/exposure").await.1,
    );
    sample(
        "BuilderStats",
        call(&h, Method::GET, "/v1/builders/Helsinki-NLP").await.1,
    );
    sample("Ready", call(&h, Method::GET, "/readyz").await.1);
    {
        // A replica restored from a snapshot at start (cluster mode).
        let restored = hubsearch_server::RestoredFrom {
            snapshot: "snapshot-000000000163-r1".into(),
            bucket: "hubsearch-snapshots".into(),
            position: 163,
            replica: "r1".into(),
            log_first: 164,
        };
        let req = Request::builder()
            .uri("/readyz")
            .body(Body::empty())
            .unwrap();
        let resp = app(h.state.clone().with_restored(Some(restored)))
            .oneshot(req)
            .await
            .unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let ready: Value = serde_json::from_slice(&bytes).unwrap();
        sample("RestoredFrom", ready["restored"].clone());
    }
    sample(
        "PublicKey",
        call(&h, Method::GET, "/v1/transparency/key").await.1,
    );
    sample(
        "SignedHead",
        call(&h, Method::GET, "/v1/transparency/sth").await.1,
    );
    sample(
        "ClusterAnswer",
        call(&h, Method::GET, "/v1/cluster?ledger=true").await.1,
    );
    sample(
        "ErrorBody",
        call(&h, Method::GET, "/v1/search?q=x&page=0").await.1,
    );
    for (name, v) in &samples {
        assert!(v.is_object(), "{name}: {v}");
    }
    let list = call(&h, Method::GET, "/api/models?full=true&limit=2")
        .await
        .1;
    // Cluster mode: a replica's standing on /readyz and /v1/cluster, with
    // `pages_lost` and its deprecated alias `pages_failed`, both documented.
    assert!(h
        .state
        .engine
        .set_replicator(std::sync::Arc::new(common::LostPages { lost: 3 })));
    let ready = call(&h, Method::GET, "/readyz").await.1;
    assert_eq!(ready["cluster"]["pages_lost"], 3, "{ready}");
    assert_eq!(ready["cluster"]["pages_failed"], 3, "{ready}");
    // (`Schema:case`: another answer of the same schema.)
    samples.insert("Ready:cluster".into(), ready.clone());
    samples.insert("ReplicaStatus".into(), ready["cluster"].clone());
    samples.insert(
        "ClusterAnswer:cluster".into(),
        call(&h, Method::GET, "/v1/cluster").await.1,
    );
    let status = &doc["components"]["schemas"]["ReplicaStatus"];
    let required: Vec<&str> = status["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for field in ["pages_lost", "pages_failed"] {
        assert!(required.contains(&field), "{field}: {status}");
        assert_eq!(
            status["properties"][field]["type"], "integer",
            "{field}: {status}"
        );
    }
    assert_eq!(
        status["properties"]["pages_failed"]["deprecated"], true,
        "{status}"
    );
    assert!(
        status["properties"]["pages_lost"]["deprecated"].is_null(),
        "{status}"
    );
    assert!(
        status["properties"]["pages_failed"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("pages_lost")),
        "{status}"
    );
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(serde_json::to_string(v).unwrap().as_bytes())
            .unwrap();
        p.to_string_lossy().into_owned()
    };
    let doc_path = write("openapi.json", &doc);
    let samples_path = write("samples.json", &Value::Object(samples));
    let list_path = write("list.json", &list);
    let out = python(
        r#"
import json, sys
from openapi_spec_validator import validate
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
doc = json.load(open(sys.argv[1]))
validate(doc)
registry = Registry().with_resource("urn:api", Resource.from_contents(doc, default_specification=DRAFT202012))
def check(name, instance):
    Draft202012Validator({"$ref": "urn:api#/components/schemas/" + name}, registry=registry).validate(instance)
for name, instance in json.load(open(sys.argv[2])).items():
    check(name.split(":")[0], instance)
for m in json.load(open(sys.argv[3])):
    check("HfModel", m)
print("valid")
"#,
        &[&doc_path, &samples_path, &list_path],
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("valid"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
