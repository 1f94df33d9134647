"""Reads HCL on stdin, prints it as JSON on stdout, in python-hcl2's shape
(blocks are lists of one-key objects). python-hcl2 7 decodes a quoted
string's backslash escapes but keeps the template escapes `$${` and `%%{`
as written, so those are decoded here (to `${` and `%{`, as Nomad reads
them)."""
import json
import sys

import hcl2


def decode(value):
    if isinstance(value, str):
        return value.replace("$${", "${").replace("%%{", "%{")
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    return value


json.dump(decode(hcl2.loads(sys.stdin.read())), sys.stdout)
