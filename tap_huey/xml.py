"""Caspio's XML answers, parsed with entity expansion and external entities refused."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from tap_huey.errors import BadPayload, CaspioAPIError


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _parse(content: bytes) -> Element:
    try:
        root: Element = fromstring(content, forbid_dtd=True)
        return root
    except DefusedXmlException as error:
        raise CaspioAPIError(
            f"Caspio's answer is XML with a DTD or entity declaration ({type(error).__name__}); "
            "refused to parse it. Use response_format: json, and report this to the account owner."
        ) from error


def _value(element: Element) -> Any:
    """An element's value: its text, `""` when empty, or a LIST's items as a mapping."""
    children = list(element)
    if children and all("Key" in child.attrib or "key" in child.attrib for child in children):
        return {
            child.attrib.get("Key", child.attrib.get("key", "")): child.attrib.get(
                "Value", child.attrib.get("value", child.text or "")
            )
            for child in children
        }
    if children:
        return {_local(child.tag): _value(child) for child in children}
    return element.text or ""


def _find(root: Element, name: str) -> Element | None:
    if _local(root.tag) == name:
        return root
    return next((element for element in root.iter() if _local(element.tag) == name), None)


def parse_records(content: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Rows and the optional pagination block of a records answer.

    Each row maps a field name to its text; an empty element gives `""` and a missing one is
    absent, so that the two stay apart. LIST values come back as `{item id: value}`.

    Raises:
        BadPayload: when the body is not well-formed XML (cut short in transit, say).
        CaspioAPIError: when the XML is unsafe (a DTD or entity declaration).
    """
    try:
        root = _parse(content)
    except CaspioAPIError:
        raise
    except Exception as error:  # ParseError is not exported under one stable name
        raise BadPayload(f"Caspio sent XML that does not parse: {error}") from error
    result = _find(root, "result")
    container = result if result is not None else root
    rows = [{child.tag.rsplit("}", 1)[-1]: _value(child) for child in row} for row in container]
    pagination_element = _find(root, "pagination")
    pagination = None
    if pagination_element is not None:
        pagination = {child.tag.rsplit("}", 1)[-1]: child.text for child in pagination_element}
    return rows, pagination


def parse_list(content: bytes) -> list[Any]:
    """The items of a `Result` holding a list: view names or field descriptions."""
    root = _parse(content)
    result = _find(root, "result")
    container = result if result is not None else root
    items: list[Any] = []
    for child in container:
        if len(child):
            items.append({grand.tag.rsplit("}", 1)[-1]: _value(grand) for grand in child})
        else:
            items.append(child.text or "")
    return items


def parse_error(content: bytes) -> tuple[str, str]:
    """Caspio's `Code` and `Message` from an `<Error>` body; empty when it has none."""
    try:
        root = _parse(content)
    except Exception:
        return "", ""
    code = _find(root, "code")
    message = _find(root, "message")
    return (
        code.text or "" if code is not None else "",
        message.text or "" if message is not None else "",
    )
