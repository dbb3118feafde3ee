"""Answer checking shared by every task: GSM8K ``#### N`` and MATH ``\\boxed{}`` (paper §3's binary correctness).

Each prompt–response pair of the paper gets a correctness bit: GSM8K by extracting the number after
``####`` and comparing it numerically, MATH by extracting the last ``\\boxed{...}`` and comparing with
``math_verify`` when installed (the ``[math]`` extra), else a documented normaliser. The miniature world
writes GSM8K-style answers, so it uses the GSM8K check.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

# ----------------------------------------------------------------------------------------------
# GSM8K answers

# A number: optional sign, digits with optional thousands commas, optional decimals.
_NUMBER_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def _clean_number(match: re.Match, text: str) -> str:
    s = match.group(0)
    if s.startswith("-") and match.start() > 0 and (text[match.start() - 1].isalnum() or text[match.start() - 1] in ")]"):
        s = s[1:]  # a binary minus as in "8-2", not a sign
    return s.replace(",", "")


def extract_gsm8k_answer(text: str | None) -> str | None:
    """The final numeric answer of a GSM8K-style response (paper §3's correctness score).

    The number after the last ``####`` (commas, ``$`` and a trailing period stripped); if there is no
    ``####`` or nothing numeric after it, the last number in the text; ``None`` if there is none.

    Examples:
        ``"... #### 1,234"`` → ``"1234"``; ``"so she has 8 apples."`` → ``"8"``.
    """
    if not text:
        return None
    pos = text.rfind("####")
    if pos >= 0:
        tail = text[pos + 4:]
        m = _NUMBER_RE.search(tail.replace("$", ""))
        if m:
            return _clean_number(m, tail.replace("$", ""))
    matches = list(_NUMBER_RE.finditer(text))
    return _clean_number(matches[-1], text) if matches else None


def _to_decimal(s: str | None) -> Decimal | None:
    if s is None:
        return None
    try:
        return Decimal(s.replace(",", ""))
    except InvalidOperation:
        return None


def gsm8k_is_correct(response: str | None, reference: str | int | float) -> bool:
    """Binary correctness of a GSM8K response (paper §3): numeric equality of final answers.

    ``reference`` may be a number, a number string, or a full reference solution ending ``#### N``;
    ``"8.00"`` equals ``"8"``.
    """
    pred = _to_decimal(extract_gsm8k_answer(response))
    ref = _to_decimal(extract_gsm8k_answer(str(reference)))
    if ref is None:
        raise ValueError(f"reference={reference!r} has no number; pass the gold answer or solution")
    return pred is not None and pred == ref


# ----------------------------------------------------------------------------------------------
# MATH answers


def extract_boxed(text: str | None) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, else ``None``.

    Also accepts the brace-less form ``\\boxed 5``. Nested braces are kept:
    ``\\boxed{\\frac{1}{2}}`` → ``\\frac{1}{2}``.
    """
    if not text:
        return None
    pos = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if pos < 0:
        return None
    i = pos + (len("\\boxed") if text.startswith("\\boxed", pos) else len("\\fbox"))
    if i < len(text) and text[i] == " ":
        m = re.match(r" +([^\s$]+)", text[i:])
        return m.group(1) if m else None
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth, start = 0, i + 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[start:j]
    return None  # unbalanced


def _strip_text_wrappers(s: str) -> str:
    """Drop a trailing ``\\text{...}`` unit after other content, then unwrap remaining ``\\text{X}``."""
    m = re.match(r"^(.*\S)\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z ]*\}$", s)
    if m and not re.search(r"\\(?:text|mbox|mathrm)\{[^}]*$", m.group(1)):
        s = m.group(1)
    return re.sub(r"\\(?:text|mbox|textbf)\{([^{}]*)\}", r"\1", s)


def _fix_fracs_and_sqrt(s: str) -> str:
    """``\\frac12`` → ``\\frac{1}{2}``, ``\\frac1{2}`` → ``\\frac{1}{2}``, ``\\sqrt3`` → ``\\sqrt{3}``."""
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)


def _as_fraction(s: str) -> Fraction | None:
    """The rational value of a plain number, ``a/b`` or ``\\frac{a}{b}`` (with sign), else ``None``."""
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s) or re.fullmatch(r"(-?)(\d+)/(\d+)", s)
    try:
        if m:
            val = Fraction(int(m.group(2)), int(m.group(3)))
            return -val if m.group(1) else val
        if re.fullmatch(r"-?(\d+\.?\d*|\.\d+)", s):
            return Fraction(s)
    except (ZeroDivisionError, ValueError):
        return None
    return None


def normalize_math_answer(s: str | None) -> str | None:
    """Fallback MATH answer normaliser (used when ``math_verify`` is not installed; paper §3).

    Steps, in order: strip ``\\boxed`` wrapper and whitespace; drop ``\\!``, ``\\,``, ``\\;``,
    ``\\left``/``\\right``, ``\\displaystyle``, ``^\\circ``/``^{\\circ}``, ``\\$``/``$``, ``\\%``/``%``;
    ``dfrac``/``tfrac`` → ``frac``; drop a trailing unit ``\\text{...}`` and unwrap other ``\\text{X}``;
    drop a leading short ``x =``; remove spaces and a trailing period; brace ``\\frac12``/``\\sqrt3``;
    drop thousands commas in a lone number; finally rewrite any rational number (``0.5``, ``1/2``,
    ``\\frac{2}{4}``, ``2.0``) to a canonical ``\\frac{p}{q}`` or integer so equal values compare equal.

    Returns:
        The normalised string (``None`` stays ``None``).
    """
    if s is None:
        return None
    s = str(s).strip()
    if "\\boxed" in s or "\\fbox" in s:
        s = extract_boxed(s) or s
    s = s.replace("\n", "")
    for tok in ("\\!", "\\,", "\\;", "\\:", "\\left", "\\right", "\\displaystyle"):
        s = s.replace(tok, "")
    s = s.replace("dfrac", "frac").replace("tfrac", "frac")
    for tok in ("^{\\circ}", "^\\circ", "\\$", "$", "\\%", "%"):
        s = s.replace(tok, "")
    s = _strip_text_wrappers(s.strip())
    s = re.sub(r"^[A-Za-z]\w?\s*=\s*(?=.)", "", s) if s.count("=") == 1 else s
    s = s.replace(" ", "").rstrip(".")
    s = _fix_fracs_and_sqrt(s)
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    if s.startswith("."):
        s = "0" + s
    val = _as_fraction(s)
    if val is not None:
        if val.denominator == 1:
            return str(val.numerator)
        sign = "-" if val < 0 else ""
        return f"{sign}\\frac{{{abs(val.numerator)}}}{{{val.denominator}}}"
    return s


def _math_verify_equal(response: str, reference: str) -> bool:
    from math_verify import parse, verify  # optional dependency (pip install math-verify)

    gold = parse(reference if "\\boxed" in reference else "\\boxed{" + reference + "}")
    return bool(verify(gold, parse(response)))


def math_is_correct(response: str | None, reference: str, use_math_verify: bool | None = None) -> bool:
    """Binary correctness of a MATH response (paper §3).

    The fallback compares :func:`normalize_math_answer` of the last ``\\boxed{}`` in the response
    (the whole response when there is no box) with the normalised reference. When ``math_verify``
    (package ``math-verify``) is importable the response is correct if ``math_verify`` accepts it
    *or* the fallback does (equal normalised strings are a sound match that ``math_verify``
    occasionally misses); if ``math_verify`` errors, the fallback alone decides.

    Args:
        response: model output.
        reference: gold answer (bare, e.g. ``\\frac{14}{3}``, or a solution containing ``\\boxed``).
        use_math_verify: force (``True``) or forbid (``False``) ``math_verify``; ``None`` = if available.
    """
    if not response:
        return False
    pred = extract_boxed(response)
    pred = pred if pred is not None else response
    if normalize_math_answer(pred) == normalize_math_answer(reference):
        return True
    if use_math_verify is False:
        return False
    try:
        return _math_verify_equal(response, reference)
    except ImportError:
        if use_math_verify:
            raise ValueError("use_math_verify=True but math_verify is missing; pip install math-verify") from None
    except Exception:  # math_verify parse/timeout failures: the fallback has decided
        pass
    return False


__all__ = ["extract_boxed", "extract_gsm8k_answer", "gsm8k_is_correct", "math_is_correct", "normalize_math_answer"]
