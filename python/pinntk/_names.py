"""The C++ library's messages name the CLI's flags (``--nc``, ``--memory-limit``); from Python they name the
keywords of the call instead (``nc``, ``memory_limit``)."""

import re

# Flags whose keyword is not the flag's own name with "-" as "_".
_KEYWORDS = {
    "lambda": "lam",
    "ntk-scaling": "scaling",
    "ntk-path": "path",
    "density-bins": "bins",
    "density-probes": "probes",
    "density-steps": "steps",
    "problem-file": "Problem.from_file",
    "problem": "Problem.preset",
}

_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def python_names(text):
    """text with every ``--flag`` as the keyword that sets the same thing from Python."""
    return _FLAG.sub(lambda m: _KEYWORDS.get(m.group(1), m.group(1).replace("-", "_")), text)


def speak_python(error_type):
    """Makes str() of error_type's instances (pinntk.UsageError: the CLI's one-line messages) name the keywords."""
    base_str = error_type.__base__.__str__

    def __str__(self):
        return python_names(base_str(self))

    error_type.__str__ = __str__
