"""Drafts a JSON Schema (2020-12) from example outputs of one `kiln ... --json` report, for a maintainer to
review and commit under docs/schemas/. Keys present in every example are required; objects whose keys are data
(labels, phases) become maps; every number is a JSON number.

Usage: schema-sketch.py TITLE DESCRIPTION EXAMPLE.json... > docs/schemas/NAME.schema.json
"""
import json
import sys

# Objects whose keys are values, not fields.
MAPS = {"labels", "phases", "plan", "snapshots"}


def merge(values, key=None):
    kinds = {type(v).__name__ for v in values}
    if kinds <= {"int", "float"} and kinds:
        # A count in one output can be a fraction in another (seconds, rates): every number is a number.
        return {"type": "number"}
    if kinds == {"NoneType"}:
        return {"type": "null"}
    nullable = "NoneType" in kinds
    values = [v for v in values if v is not None]
    kinds.discard("NoneType")
    if len(kinds) != 1:
        return {}
    kind = kinds.pop()
    if kind == "str":
        out = {"type": "string"}
    elif kind == "bool":
        out = {"type": "boolean"}
    elif kind == "list":
        items = [x for v in values for x in v]
        out = {"type": "array"}
        if items:
            out["items"] = merge(items)
    elif kind == "dict":
        if key in MAPS:
            out = {"type": "object", "additionalProperties": merge([x for v in values for x in v.values()])}
        else:
            keys = sorted({k for v in values for k in v})
            out = {"type": "object", "properties": {k: merge([v[k] for v in values if k in v], k) for k in keys},
                   "required": [k for k in keys if all(k in v for v in values)]}
    else:
        out = {}
    if nullable and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def main():
    title, description, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    docs = [json.load(open(f)) for f in files]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, "description": description}
    schema.update(merge(docs))
    json.dump(schema, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
