"""The /docs schema of ``POST /predict``, generated from the FeatureSpec.

The route reads the raw body (validation is validation.py's job), so FastAPI cannot infer the
schema; this module writes it: one property per feature with its JSON type, categories as an
enum, the training range in the description, and an example record from the training profile.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tabserve.spec import CategoricalProfile, Feature, FeatureSpec, NumericProfile

_JSON_TYPE = {"int64": "integer", "float64": "number", "string": "string", "bool": "boolean"}


def feature_schema(f: Feature) -> dict[str, Any]:
    json_type = _JSON_TYPE[f.dtype]
    schema: dict[str, Any] = {"type": [json_type, "null"] if f.nullable else json_type}
    p = f.profile
    if isinstance(p, NumericProfile):
        schema["description"] = (
            f"{f.kind}; training range [{p.min:g}, {p.max:g}], mean {p.mean:.4g}"
        )
    elif isinstance(p, CategoricalProfile):
        cats: list[Any] = list(p.categories)
        if f.dtype == "int64":
            cats = [int(c) for c in cats]
        elif f.dtype == "float64":
            cats = [float(c) for c in cats]
        schema["enum"] = [*cats, None] if f.nullable else cats
        schema["description"] = "categorical"
    else:
        schema["description"] = "boolean"
    return schema


def record_schema(spec: FeatureSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: feature_schema(f) for f in spec.features},
        "required": spec.names,
        "additionalProperties": False,
        "example": spec.example_record(),
    }


def answer_schema(spec: FeatureSpec) -> dict[str, Any]:
    props: dict[str, Any] = {"prediction": {"description": f"predicted {spec.target.name}"}}
    if spec.target.task == "classification":
        props["probabilities"] = {
            "type": "object",
            "properties": {str(c): {"type": "number"} for c in spec.target.classes or []},
        }
    props["warnings"] = {"type": "array", "items": {"type": "string"}}
    return {"type": "object", "properties": props}


def install(app: FastAPI, max_rows: int) -> None:
    """Replace ``app.openapi`` by one that patches /predict with the loaded model's spec.

    The schema is rebuilt when the served spec changes (hot reload), so /docs stays true."""

    def openapi() -> dict[str, Any]:
        spec: FeatureSpec | None = getattr(app.state, "docs_spec", None)
        if app.openapi_schema is not None and app.state.docs_spec_built is spec:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        if spec is not None:
            _patch_predict(schema, spec, max_rows)
        app.openapi_schema = schema
        app.state.docs_spec_built = spec
        return schema

    app.state.docs_spec_built = None
    app.openapi = openapi  # type: ignore[method-assign]


def _patch_predict(schema: dict[str, Any], spec: FeatureSpec, max_rows: int) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Record"] = record_schema(spec)
    components["Answer"] = answer_schema(spec)
    components["ValidationError"] = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "record": {"type": "integer"},
                        "field": {"type": "string"},
                        "reason": {
                            "enum": [
                                "missing",
                                "wrong_type",
                                "null",
                                "unknown_category",
                                "extra_field",
                                "not_finite",
                                "out_of_range",
                            ]
                        },
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
    example = spec.example_record()
    # /predict is a raw route (not in FastAPI's generated paths): describe it here.
    operation = schema.setdefault("paths", {}).setdefault("/predict", {}).setdefault("post", {})
    operation["summary"] = "Predict one record or an array of records"
    operation["operationId"] = "predict"
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Record"},
                        {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Record"},
                            "maxItems": max_rows,
                        },
                    ]
                },
                "examples": {
                    "one record": {"value": example},
                    "an array": {"value": [example, example]},
                },
            }
        },
    }
    operation["responses"] = {
        "200": {
            "description": "The prediction (an array answers {'predictions': [...]})",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}},
        },
        "400": {
            "description": "Invalid input: each problem named with its field and reason",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"}}
            },
        },
        "413": {"description": "Body or record count over the limit"},
        "415": {"description": "Body is not application/json"},
        "503": {"description": "The model is still loading"},
    }
