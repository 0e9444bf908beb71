"""Strict check of raw EC2 Query responses against botocore's loaded EC2 service model.

botocore's own parser is lenient: it skips elements it does not know and reads whatever text it finds. This
walks the raw XML instead: every element must be a member of the shape at that point (by its XML name), lists
hold only their item element, scalars hold no children and text of the member's type, and enum members hold
one of the model's values. Errors must be EC2's envelope: Response/Errors/Error/{Code,Message} + RequestID.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from botocore.utils import parse_timestamp

NAMESPACE_PREFIX = "http://ec2.amazonaws.com/doc/"

# Values EC2 documents that the model's enum does not list. The API reference's Instance page says of
# `platform`: "This value is windows for Windows instances; otherwise blank", while the enum spells it Windows.
ENUM_EXCEPTIONS = {("Instance", "platform"): {"windows"}}


def _local(tag: str) -> str:
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def _xml_name(name: str, member) -> str:
    return member.serialization.get("name", name)


def _check_scalar(elem, shape, parent: str, member_name: str, path: str, out: list[str]) -> None:
    if len(elem):
        out.append(f"{path}: scalar {shape.type_name} has child elements")
        return
    text = elem.text or ""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            int(text)
        elif kind in ("double", "float"):
            float(text)
        elif kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(text)
        elif kind == "timestamp":
            parse_timestamp(text)
    except (ValueError, TypeError):
        out.append(f"{path}: {text!r} is not a valid {kind}")
        return
    enum = getattr(shape, "enum", None) or []
    if kind == "string" and enum and text and text not in enum:
        if text not in ENUM_EXCEPTIONS.get((parent, member_name), set()):
            out.append(f"{path}: {text!r} is not one of {shape.name}'s values")


def _walk(elem, shape, path: str, out: list[str], parent: str = "", member_name: str = "") -> None:
    kind = shape.type_name
    if kind == "structure":
        members = {_xml_name(n, m): (n, m) for n, m in shape.members.items()}
        seen: set[str] = set()
        for child in elem:
            tag = _local(child.tag)
            if tag not in members:
                out.append(f"{path}/{tag}: not a member of {shape.name}")
                continue
            if tag in seen:
                out.append(f"{path}/{tag}: appears twice")
            seen.add(tag)
            name, member = members[tag]
            _walk(child, member, f"{path}/{tag}", out, shape.name, name)
        if (elem.text or "").strip():
            out.append(f"{path}: structure {shape.name} has text {elem.text.strip()!r}")
    elif kind == "list":
        item = shape.member.serialization.get("name", "member")
        for i, child in enumerate(elem):
            tag = _local(child.tag)
            if tag != item:
                out.append(f"{path}/{tag}: a {shape.name} holds only <{item}> elements")
                continue
            _walk(child, shape.member, f"{path}/{item}[{i}]", out, parent, member_name)
    elif kind == "map":
        out.append(f"{path}: maps are not expected in EC2 responses")
    else:
        _check_scalar(elem, shape, parent, member_name, path, out)


def check_output(service_model, operation: str, body: bytes) -> list[str]:
    """Violations of the operation's output shape in a 2xx response body (empty list = conforms)."""
    out: list[str] = []
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        return [f"{operation}: not XML ({err})"]
    op = service_model.operation_model(operation)
    if _local(root.tag) != f"{operation}Response":
        out.append(f"{operation}: root element is <{_local(root.tag)}>")
    if not root.tag.startswith("{" + NAMESPACE_PREFIX):
        out.append(f"{operation}: root namespace is not {NAMESPACE_PREFIX}<version>/")
    shape = op.output_shape
    request_ids = [c for c in root if _local(c.tag) == "requestId"]
    if len(request_ids) != 1 or not (request_ids[0].text or "").strip():
        out.append(f"{operation}: exactly one non-empty <requestId> expected")
    rest = [c for c in root if _local(c.tag) != "requestId"]
    if shape is None:
        # Unit outputs (e.g. CancelConversionTask, CreateTags): EC2 sends <return>true</return>.
        for c in rest:
            if _local(c.tag) != "return" or c.text != "true":
                out.append(f"{operation}/{_local(c.tag)}: unexpected in a response without output members")
        return out
    wrapper = ET.Element("root")
    wrapper.extend(rest)
    _walk(wrapper, shape, operation, out)
    return out


def check_error(body: bytes) -> tuple[list[str], str, str]:
    """(violations, code, message) of an error response in EC2's envelope."""
    out: list[str] = []
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        return [f"error body is not XML ({err})"], "", ""
    if root.tag != "Response":
        out.append(f"error root is <{root.tag}>, not <Response>")
    names = [c.tag for c in root]
    if names != ["Errors", "RequestID"]:
        out.append(f"error envelope children are {names}, not ['Errors', 'RequestID']")
    errors = root.find("Errors")
    error_elems = list(errors) if errors is not None else []
    if len(error_elems) != 1 or error_elems[0].tag != "Error":
        out.append("Errors must hold exactly one <Error>")
        return out, "", ""
    fields = [c.tag for c in error_elems[0]]
    if fields != ["Code", "Message"]:
        out.append(f"Error children are {fields}, not ['Code', 'Message']")
    code = error_elems[0].findtext("Code") or ""
    message = error_elems[0].findtext("Message") or ""
    if not code:
        out.append("empty error Code")
    if not (root.findtext("RequestID") or "").strip():
        out.append("empty RequestID")
    return out, code, message
