"""The Open Inference Protocol v2 gRPC messages tabserve answers, built at import from a
descriptor written here (no protoc step, no generated module to keep in step).

Field names and numbers are the protocol's (package ``inference``, as KServe's and Triton's
``grpc_service.proto`` and Triton's ``model_config.proto`` define them): that is what makes
tritonclient and perf_analyzer talk to this server unchanged, and tests/unit/serving/
test_grpc_messages.py checks every field against tritonclient's own descriptors. Only the
messages of the methods tabserve implements are here (health, metadata, config, infer). They
live in a private descriptor pool, so they never collide with tritonclient's classes when both
are imported in one process.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"

_T = descriptor_pb2.FieldDescriptorProto
STRING, BOOL, INT32, INT64 = _T.TYPE_STRING, _T.TYPE_BOOL, _T.TYPE_INT32, _T.TYPE_INT64
UINT32, UINT64, FLOAT, DOUBLE = _T.TYPE_UINT32, _T.TYPE_UINT64, _T.TYPE_FLOAT, _T.TYPE_DOUBLE
BYTES, MESSAGE, ENUM = _T.TYPE_BYTES, _T.TYPE_MESSAGE, _T.TYPE_ENUM
ONE, MANY = _T.LABEL_OPTIONAL, _T.LABEL_REPEATED

# message -> [(field, number, type, label, message or enum type name)], nested with "."
Fields = list[tuple[str, int, int, int, str | None]]
_PARAMETERS_ENTRY: Fields = [
    ("key", 1, STRING, ONE, None),
    ("value", 2, MESSAGE, ONE, "InferParameter"),
]
MESSAGES: dict[str, Fields] = {
    "ServerLiveRequest": [],
    "ServerLiveResponse": [("live", 1, BOOL, ONE, None)],
    "ServerReadyRequest": [],
    "ServerReadyResponse": [("ready", 1, BOOL, ONE, None)],
    "ModelReadyRequest": [("name", 1, STRING, ONE, None), ("version", 2, STRING, ONE, None)],
    "ModelReadyResponse": [("ready", 1, BOOL, ONE, None)],
    "ServerMetadataRequest": [],
    "ServerMetadataResponse": [
        ("name", 1, STRING, ONE, None),
        ("version", 2, STRING, ONE, None),
        ("extensions", 3, STRING, MANY, None),
    ],
    "ModelMetadataRequest": [("name", 1, STRING, ONE, None), ("version", 2, STRING, ONE, None)],
    "ModelMetadataResponse.TensorMetadata": [
        ("name", 1, STRING, ONE, None),
        ("datatype", 2, STRING, ONE, None),
        ("shape", 3, INT64, MANY, None),
    ],
    "ModelMetadataResponse": [
        ("name", 1, STRING, ONE, None),
        ("versions", 2, STRING, MANY, None),
        ("platform", 3, STRING, ONE, None),
        ("inputs", 4, MESSAGE, MANY, "ModelMetadataResponse.TensorMetadata"),
        ("outputs", 5, MESSAGE, MANY, "ModelMetadataResponse.TensorMetadata"),
    ],
    "InferParameter": [
        ("bool_param", 1, BOOL, ONE, None),
        ("int64_param", 2, INT64, ONE, None),
        ("string_param", 3, STRING, ONE, None),
        ("double_param", 4, DOUBLE, ONE, None),
        ("uint64_param", 5, UINT64, ONE, None),
    ],
    "InferTensorContents": [
        ("bool_contents", 1, BOOL, MANY, None),
        ("int_contents", 2, INT32, MANY, None),
        ("int64_contents", 3, INT64, MANY, None),
        ("uint_contents", 4, UINT32, MANY, None),
        ("uint64_contents", 5, UINT64, MANY, None),
        ("fp32_contents", 6, FLOAT, MANY, None),
        ("fp64_contents", 7, DOUBLE, MANY, None),
        ("bytes_contents", 8, BYTES, MANY, None),
    ],
    "ModelInferRequest.ParametersEntry": _PARAMETERS_ENTRY,
    "ModelInferRequest.InferInputTensor.ParametersEntry": _PARAMETERS_ENTRY,
    "ModelInferRequest.InferInputTensor": [
        ("name", 1, STRING, ONE, None),
        ("datatype", 2, STRING, ONE, None),
        ("shape", 3, INT64, MANY, None),
        ("parameters", 4, MESSAGE, MANY, "ModelInferRequest.InferInputTensor.ParametersEntry"),
        ("contents", 5, MESSAGE, ONE, "InferTensorContents"),
    ],
    "ModelInferRequest.InferRequestedOutputTensor.ParametersEntry": _PARAMETERS_ENTRY,
    "ModelInferRequest.InferRequestedOutputTensor": [
        ("name", 1, STRING, ONE, None),
        (
            "parameters",
            2,
            MESSAGE,
            MANY,
            "ModelInferRequest.InferRequestedOutputTensor.ParametersEntry",
        ),
    ],
    "ModelInferRequest": [
        ("model_name", 1, STRING, ONE, None),
        ("model_version", 2, STRING, ONE, None),
        ("id", 3, STRING, ONE, None),
        ("parameters", 4, MESSAGE, MANY, "ModelInferRequest.ParametersEntry"),
        ("inputs", 5, MESSAGE, MANY, "ModelInferRequest.InferInputTensor"),
        ("outputs", 6, MESSAGE, MANY, "ModelInferRequest.InferRequestedOutputTensor"),
        ("raw_input_contents", 7, BYTES, MANY, None),
    ],
    "ModelInferResponse.ParametersEntry": _PARAMETERS_ENTRY,
    "ModelInferResponse.InferOutputTensor.ParametersEntry": _PARAMETERS_ENTRY,
    "ModelInferResponse.InferOutputTensor": [
        ("name", 1, STRING, ONE, None),
        ("datatype", 2, STRING, ONE, None),
        ("shape", 3, INT64, MANY, None),
        ("parameters", 4, MESSAGE, MANY, "ModelInferResponse.InferOutputTensor.ParametersEntry"),
        ("contents", 5, MESSAGE, ONE, "InferTensorContents"),
    ],
    "ModelInferResponse": [
        ("model_name", 1, STRING, ONE, None),
        ("model_version", 2, STRING, ONE, None),
        ("id", 3, STRING, ONE, None),
        ("parameters", 4, MESSAGE, MANY, "ModelInferResponse.ParametersEntry"),
        ("outputs", 5, MESSAGE, MANY, "ModelInferResponse.InferOutputTensor"),
        ("raw_output_contents", 6, BYTES, MANY, None),
    ],
    "ModelConfigRequest": [("name", 1, STRING, ONE, None), ("version", 2, STRING, ONE, None)],
    "ModelTensorReshape": [("shape", 1, INT64, MANY, None)],
    "ModelInput": [
        ("name", 1, STRING, ONE, None),
        ("data_type", 2, ENUM, ONE, "DataType"),
        ("format", 3, ENUM, ONE, "ModelInput.Format"),
        ("dims", 4, INT64, MANY, None),
        ("reshape", 5, MESSAGE, ONE, "ModelTensorReshape"),
        ("optional", 8, BOOL, ONE, None),
    ],
    "ModelOutput": [
        ("name", 1, STRING, ONE, None),
        ("data_type", 2, ENUM, ONE, "DataType"),
        ("dims", 3, INT64, MANY, None),
        ("reshape", 5, MESSAGE, ONE, "ModelTensorReshape"),
    ],
    "ModelDynamicBatching": [("max_queue_delay_microseconds", 2, UINT64, ONE, None)],
    "ModelConfig": [
        ("name", 1, STRING, ONE, None),
        ("platform", 2, STRING, ONE, None),
        ("backend", 17, STRING, ONE, None),
        ("max_batch_size", 4, INT32, ONE, None),
        ("input", 5, MESSAGE, MANY, "ModelInput"),
        ("output", 6, MESSAGE, MANY, "ModelOutput"),
        ("dynamic_batching", 11, MESSAGE, ONE, "ModelDynamicBatching"),
    ],
    "ModelConfigResponse": [("config", 1, MESSAGE, ONE, "ModelConfig")],
}
DATA_TYPES = [
    "TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64",
    "TYPE_INT8", "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32", "TYPE_FP64",
    "TYPE_STRING", "TYPE_BF16",
]  # fmt: skip
INPUT_FORMATS = ["FORMAT_NONE", "FORMAT_NHWC", "FORMAT_NCHW"]


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="tabserve/inference.proto", package=PACKAGE, syntax="proto3"
    )
    enum = proto.enum_type.add(name="DataType")
    for number, name in enumerate(DATA_TYPES):
        enum.value.add(name=name, number=number)
    made: dict[str, descriptor_pb2.DescriptorProto] = {}
    for full in MESSAGES:  # parents before children: the dict lists them so, or makes them
        _message(proto, made, full)
    fmt = made["ModelInput"].enum_type.add(name="Format")
    for number, name in enumerate(INPUT_FORMATS):
        fmt.value.add(name=name, number=number)
    return proto


def _message(
    proto: descriptor_pb2.FileDescriptorProto,
    made: dict[str, descriptor_pb2.DescriptorProto],
    full: str,
) -> descriptor_pb2.DescriptorProto:
    if full in made:
        return made[full]
    parent, _, name = full.rpartition(".")
    if parent:
        message = _message(proto, made, parent).nested_type.add(name=name)
    else:
        message = proto.message_type.add(name=name)
    if name == "ParametersEntry":
        message.options.map_entry = True
    for field, number, kind, label, type_name in MESSAGES[full]:
        f = message.field.add(name=field, number=number, type=kind, label=label)
        if type_name is not None:
            f.type_name = f".{PACKAGE}.{type_name}"
    made[full] = message
    return message


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())


def message(name: str) -> Any:
    """The class of ``inference.<name>`` (``ModelInferRequest``, ``ModelConfig``...)."""
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))


def descriptor(name: str) -> Any:
    return _pool.FindMessageTypeByName(f"{PACKAGE}.{name}")
