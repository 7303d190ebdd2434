"""The OpenAPI document of every route, written from the served model's FeatureSpec.

Routes read raw bodies (validation is the validation package's job), so no framework can infer
their schemas; this module writes them: one property per feature with its JSON type, categories
as an enum, the training range in the description, an example record from the training profile,
and for every route each status it can answer with its body schema. Fuzzers (schemathesis) and
generated clients read this document, so it must say exactly what the server does.
"""

from __future__ import annotations

from typing import Any

import tabserve
from tabserve.predlog.entries import CLIENT_ID_MAX
from tabserve.predlog.feedback import MAX_RECORD_INDEX
from tabserve.serving.validation import REASONS
from tabserve.spec import Feature, FeatureSpec, NumericProfile

_JSON_TYPE = {"int64": "integer", "float64": "number", "string": "string", "bool": "boolean"}
_REF = "#/components/schemas/"


def feature_schema(f: Feature) -> dict[str, Any]:
    json_type = _JSON_TYPE[f.dtype]
    schema: dict[str, Any] = {"type": [json_type, "null"] if f.nullable else json_type}
    p = f.profile
    optional = "; optional (null or omitted counts as missing)" if f.nullable else ""
    if f.kind == "categorical":
        if f.categories is not None:
            cats: list[Any] = list(f.categories)
            if f.dtype == "int64":
                cats = [int(float(c)) for c in cats]
            elif f.dtype == "float64":
                cats = [float(c) for c in cats]
            schema["enum"] = [*cats, None] if f.nullable else cats
            schema["description"] = "categorical" + optional
        else:
            schema["description"] = (
                "categorical (categories unknown: passed to the model)" + optional
            )
    elif isinstance(p, NumericProfile):
        schema["description"] = (
            f"{f.kind}; training range [{p.min:g}, {p.max:g}], mean {p.mean:.4g}{optional}"
        )
    else:
        schema["description"] = f.kind + optional
    return schema


def record_schema(spec: FeatureSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: feature_schema(f) for f in spec.features},
        "required": [f.name for f in spec.features if not f.nullable],
        "additionalProperties": False,
        "example": spec.example_record(),
    }


def _prediction_schema(spec: FeatureSpec) -> dict[str, Any]:
    props: dict[str, Any] = {"prediction": {"description": f"predicted {spec.target.name}"}}
    required = ["prediction"]
    if spec.target.task == "classification":
        classes = [str(c) for c in spec.target.classes or []]
        props["probabilities"] = {
            "type": "object",
            "properties": {c: {"type": "number"} for c in classes},
            "required": classes,
        }
        required.append("probabilities")
    return {"type": "object", "properties": props, "required": required}


def _answer_schemas(spec: FeatureSpec) -> dict[str, Any]:
    meta = {
        "model": {"type": "string"},
        "version": {"type": "string"},
        "warnings": {"type": "array", "items": {"type": "string"}},
    }
    one = _prediction_schema(spec)
    single = {
        "type": "object",
        "properties": {**one["properties"], **meta},
        "required": [*one["required"], "model", "version"],
    }
    many = {
        "type": "object",
        "properties": {"predictions": {"type": "array", "items": one}, **meta},
        "required": ["predictions", "model", "version"],
    }
    return {"Answer": single, "Answers": many}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "one line saying what to fix"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason", "message"],
                "properties": {
                    "record": {"type": "integer", "description": "index in the array or tensor"},
                    "field": {
                        "type": ["string", "null"],
                        "description": "the feature (null when the record itself is wrong)",
                    },
                    "reason": {"enum": list(REASONS)},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

_TENSOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string", "description": "a feature name (see the model metadata)"},
        "datatype": {"type": "string", "enum": ["BYTES", "FP64", "FP32", "INT64", "BOOL"]},
        "shape": {"type": "array", "items": {"type": "integer"}, "description": "[N] or [N, 1]"},
        "data": {"type": "array", "description": "flat or nested row-major values"},
        "parameters": {"type": "object", "description": "binary_data_size (binary extension)"},
    },
}
_INFER_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": {"$ref": _REF + "Tensor"}},
        "outputs": {"type": "array", "items": {"type": "object"}},
    },
}
_INFER_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "outputs": {"type": "array", "items": {"type": "object"}},
    },
}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json_body({"$ref": _REF + "Error"}, description)


def _object(description: str) -> dict[str, Any]:
    return _json_body({"type": "object"}, description)


NOT_READY = _error("No model is loaded yet (Retry-After says when to ask again)")
TOO_LARGE = _error("Body over --max-body-bytes (after decompression), or records over --max-rows")
MEDIA = _error("Content type is not JSON, or a Content-Encoding other than gzip or deflate")
FAILED = _error("The model failed on a valid request (a server fault, logged)")
BAD = _error("Bad request: invalid JSON, protocol error, or values the model cannot take")
UNKNOWN_MODEL = _error("Unknown model or version")


def _get(summary: str, responses: dict[str, Any], tag: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "tags": [tag], "responses": responses}}


def _model_params(versioned: bool) -> list[dict[str, Any]]:
    names = ["name", "version"] if versioned else ["name"]
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


def build(spec: FeatureSpec, title: str, model_version: str, max_rows: int) -> dict[str, Any]:
    """The whole document for a server serving ``spec``."""
    example = spec.example_record()
    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "summary": "Predict one record or an array of records",
                "operationId": "predict",
                "tags": ["v1"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": _REF + "Record"},
                                    {
                                        "type": "array",
                                        "items": {"$ref": _REF + "Record"},
                                        "minItems": 1,
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
                },
                "responses": {
                    "200": _json_body(
                        {"oneOf": [{"$ref": _REF + "Answer"}, {"$ref": _REF + "Answers"}]},
                        "The prediction (an array answers {'predictions': [...]})",
                    ),
                    "400": _error("Invalid input: each problem named with its field and reason"),
                    "413": TOO_LARGE,
                    "415": MEDIA,
                    "500": FAILED,
                    "503": NOT_READY,
                },
            }
        },
        "/spec": _get(
            "The FeatureSpec of the loaded model",
            {"200": _object("feature_spec.json"), "503": NOT_READY},
            "v1",
        ),
        "/health": _get("Alive (the process answers)", {"200": _object("alive")}, "operations"),
        "/ready": _get(
            "Ready (the model is loaded); 503 before",
            {"200": _object("ready"), "503": _object("loading, or failed with the reason")},
            "operations",
        ),
        "/metrics": _get(
            "Prometheus metrics",
            {"200": {"description": "exposition", "content": {"text/plain": {"schema": {}}}}},
            "operations",
        ),
        "/v2": _get("Server metadata", {"200": _object("name, version, extensions")}, "v2"),
        "/v2/health/live": _get("Server live", {"200": _object("live")}, "v2"),
        "/v2/health/ready": _get("Server ready", {"200": _object("ready"), "503": NOT_READY}, "v2"),
    }
    for versioned in (False, True):
        base = "/v2/models/{name}" + ("/versions/{version}" if versioned else "")
        params = _model_params(versioned)
        lookups = {"404": UNKNOWN_MODEL, "503": NOT_READY}
        for suffix, summary in (
            ("", "Model metadata"),
            ("/ready", "Model ready"),
            ("/config", "Model configuration (Triton's)"),
        ):
            entry = _get(summary, {"200": _object(summary), **lookups}, "v2")
            entry["get"]["parameters"] = params
            paths[base + suffix] = entry
        paths[base + "/infer"] = {
            "post": {
                "summary": "Inference (JSON tensors, or Triton's binary tensor extension)",
                "tags": ["v2"],
                "parameters": params,
                "requestBody": {
                    "required": True,
                    "description": "JSON, or JSON followed by binary tensors (header "
                    "Inference-Header-Content-Length gives the JSON part's length).",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": _REF + "InferRequest"},
                            "example": _infer_example(spec),
                        }
                    },
                },
                "responses": {
                    "200": _json_body({"$ref": _REF + "InferResponse"}, "Output tensors"),
                    "400": BAD,
                    "413": TOO_LARGE,
                    "415": MEDIA,
                    "500": FAILED,
                    **lookups,
                },
            }
        }
    labels = {"type": "object", "required": ["predictions"],
              "properties": {"predictions": {"type": "array"}}}  # fmt: skip
    records = {"type": "array", "items": {"$ref": _REF + "Record"}}
    paths["/invocations"] = {
        "post": {
            "summary": "MLflow's scoring protocol (as mlflow models serve)",
            "tags": ["MLflow"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": "exactly one of dataframe_split, dataframe_records, "
                            "instances, inputs",
                            "properties": {
                                "dataframe_split": {
                                    "type": "object",
                                    "properties": {
                                        "columns": {"type": "array", "items": {"type": "string"}},
                                        "data": {"type": "array", "items": {"type": "array"}},
                                    },
                                },
                                "dataframe_records": records,
                                "instances": records,
                                "inputs": records,
                                "params": {"type": "object"},
                            },
                        },
                        "example": {"dataframe_records": [example]},
                    },
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": _json_body(labels, "One label or value per record"),
                "400": BAD,
                "413": TOO_LARGE,
                "415": MEDIA,
                "500": FAILED,
                "503": NOT_READY,
            },
        }
    }
    ping = {"description": "ready", "content": {"text/plain": {"schema": {}}}}
    paths["/ping"] = _get("MLflow's health check", {"200": ping, "503": NOT_READY}, "MLflow")
    paths["/version"] = _get(
        "tabserve's version (MLflow's /version)",
        {"200": {"description": "version", "content": {"text/plain": {"schema": {}}}}},
        "MLflow",
    )
    name = _model_params(False)
    paths["/v1/models/{name}:predict"] = {
        "post": {
            "summary": "KServe v1 prediction",
            "tags": ["KServe v1"],
            "parameters": name,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["instances"],
                            "properties": {"instances": records},
                        },
                        "example": {"instances": [example]},
                    }
                },
            },
            "responses": {
                "200": _json_body(labels, "One label or value per instance"),
                "400": BAD,
                "404": UNKNOWN_MODEL,
                "413": TOO_LARGE,
                "415": MEDIA,
                "500": FAILED,
                "503": NOT_READY,
            },
        }
    }
    paths["/feedback"] = _feedback_path(spec)
    status = _get("KServe v1 model status", {"200": _object("ready"), "404": UNKNOWN_MODEL,
                                             "503": NOT_READY}, "KServe v1")  # fmt: skip
    status["get"]["parameters"] = name
    paths["/v1/models/{name}"] = status
    paths["/v1/models"] = _get("KServe v1 model list", {"200": _object("models")}, "KServe v1")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": model_version,
            "description": f"tabserve {tabserve.__version__}: POST /predict (v1) and /v2 "
            '(Open Inference Protocol). Errors are {"error": ..., "details"?: [...]}.',
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Record": record_schema(spec),
                **_answer_schemas(spec),
                "Error": ERROR_SCHEMA,
                "Tensor": _TENSOR_SCHEMA,
                "InferRequest": _INFER_REQUEST,
                "InferResponse": _INFER_RESPONSE,
                "FeedbackItem": _feedback_item(spec),
            }
        },
    }


def _feedback_item(spec: FeatureSpec) -> dict[str, Any]:
    """One ground-truth item: the label must be a class (JSON-typed as the class), or the
    value a finite number (predlog/feedback.py)."""
    props: dict[str, Any] = {
        "request_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": CLIENT_ID_MAX,
            "description": "the prediction's X-Request-ID: the server's id (the log's key), "
            "or the client's own X-Request-ID",
        },
        "record_index": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_RECORD_INDEX,
            "default": 0,
            "description": "the record's place in its request (0 for one record)",
        },
    }
    if spec.target.task == "classification":
        field = "label"
        props["label"] = {"enum": list(spec.target.classes or []), "description": "the true class"}
    else:
        field = "value"
        props["value"] = {"type": "number", "description": "the true value"}
    return {
        "type": "object",
        "properties": props,
        "required": ["request_id", field],
        "additionalProperties": False,
    }


def _feedback_path(spec: FeatureSpec) -> dict[str, Any]:
    item = {"$ref": _REF + "FeedbackItem"}
    example: dict[str, Any] = {"request_id": "3f2a9c...-1a", "record_index": 0}
    if spec.target.task == "classification":
        example["label"] = spec.target.classes[0] if spec.target.classes else None
    else:
        example["value"] = 0.0
    accepted = {
        "type": "object",
        "required": ["accepted"],
        "properties": {"accepted": {"type": "integer", "description": "items queued"}},
    }
    return {
        "post": {
            "summary": "Ground truth for logged predictions (stored beside the prediction log)",
            "tags": ["v1"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [item, {"type": "array", "items": item}]},
                        "example": [example],
                    }
                },
            },
            "responses": {
                "202": _json_body(accepted, "Accepted: queued for the feedback table"),
                "400": _error("Invalid items: each problem named with its record and field"),
                "413": _error("Body over --max-body-bytes, or items over --max-rows"),
                "415": MEDIA,
                "501": _error("The prediction log is off on this server (--log-db off)"),
                "503": _error("The prediction log cannot keep feedback now (Retry-After)"),
            },
        }
    }


def _infer_example(spec: FeatureSpec) -> dict[str, Any]:
    from tabserve.serving.codecs.v2_model import input_datatype

    record = spec.example_record()
    return {
        "id": "1",
        "inputs": [
            {
                "name": f.name,
                "datatype": input_datatype(f),
                "shape": [1, 1],
                "data": [record[f.name]],
            }
            for f in spec.features
        ],
    }
