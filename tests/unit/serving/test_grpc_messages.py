"""tabserve's v2 gRPC messages are wire-compatible with tritonclient's: every field tabserve
defines has the same number, type and label, and messages round-trip between the two."""

from __future__ import annotations

import pytest

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is a dev dependency")

from tritonclient.grpc import model_config_pb2, service_pb2

from tabserve.serving.grpc import messages


def theirs(full: str):  # type: ignore[no-untyped-def]
    top, *nested = full.split(".")
    for module in (service_pb2, model_config_pb2):
        found = module.DESCRIPTOR.message_types_by_name.get(top)
        if found is not None:
            for name in nested:
                found = found.nested_types_by_name[name]
            return found
    raise KeyError(full)


@pytest.mark.parametrize("full", list(messages.MESSAGES))
def test_every_field_matches_tritonclients(full: str) -> None:
    ours, triton = messages.descriptor(full), theirs(full)
    for field in ours.fields:
        other = triton.fields_by_name[field.name]
        assert (field.number, field.type, field.label) == (other.number, other.type, other.label)
        if field.message_type is not None:
            assert field.message_type.full_name == other.message_type.full_name
        if field.enum_type is not None:
            values = [(v.name, v.number) for v in field.enum_type.values]
            assert values == [(v.name, v.number) for v in other.enum_type.values][: len(values)]


def test_an_infer_request_round_trips_between_them() -> None:
    request = service_pb2.ModelInferRequest(model_name="titanic", id="7")
    tensor = request.inputs.add(name="Age", datatype="FP64", shape=[2, 1])
    tensor.parameters["binary_data_size"].int64_param = 16
    request.raw_input_contents.append(b"\0" * 16)
    request.outputs.add(name="label")
    ours = messages.message("ModelInferRequest").FromString(request.SerializeToString())
    assert ours.model_name == "titanic" and ours.inputs[0].shape == [2, 1]
    assert ours.inputs[0].parameters["binary_data_size"].int64_param == 16
    assert ours.outputs[0].name == "label" and ours.raw_input_contents[0] == b"\0" * 16
    back = service_pb2.ModelInferRequest.FromString(ours.SerializeToString())
    assert back == request
