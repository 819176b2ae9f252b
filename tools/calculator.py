"""Safe arithmetic: expressions are parsed with ``ast`` and only numbers,
arithmetic operators and a short list of math functions are evaluated."""

from __future__ import annotations

import ast
import math
import operator
import re

__all__ = ["CalculatorError", "evaluate", "calculate"]


class CalculatorError(ValueError):
    pass


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": math.factorial,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
# Guards against expressions that would take forever or eat memory.
_MAX_EXPONENT = 10_000
_MAX_FACTORIAL = 1_000
_MAX_MAGNITUDE = 10**300
_MAX_LENGTH = 500
# Integer powers and round() build huge integers before _check sees the result
# ((10**300) ** 9999 has 3 million digits; round(1, -10**18) needs 10**(10**18) and
# never returns), so both are refused from their arguments, before any work is done.
_MAX_BITS = _MAX_MAGNITUDE.bit_length()
_MAX_NDIGITS = 300

_REPLACEMENTS = (("×", "*"), ("÷", "/"), ("−", "-"), ("^", "**"))
# 1,234,567 -> 1234567 (only groups of exactly three digits, so "max(1,2)" is untouched)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _check(value: float | int) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalculatorError("only numbers are allowed")
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise CalculatorError("the result is not a finite number")
    if abs(value) > _MAX_MAGNITUDE:
        raise CalculatorError("the result is too large")
    return value


def _check_power(base: float | int, exponent: float | int) -> None:
    if abs(exponent) > _MAX_EXPONENT:
        raise CalculatorError(f"exponent {exponent} is too large")
    # an integer power has about bits(base) * exponent bits: refuse it before computing it
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0:
        if (abs(base).bit_length() - 1) * exponent > _MAX_BITS:
            raise CalculatorError("the result is too large")


def _eval(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        return _check(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = _FUNCTIONS.get(node.func.id)
        if fn is None:
            raise CalculatorError(f"unknown function {node.func.id!r}; allowed: {', '.join(sorted(_FUNCTIONS))}")
        args = [_eval(a) for a in node.args]
        if fn is math.factorial and args and (args[0] > _MAX_FACTORIAL or args[0] != int(args[0])):
            raise CalculatorError("factorial takes a whole number up to 1000")
        if fn is round and len(args) > 1 and not (isinstance(args[1], int) and abs(args[1]) <= _MAX_NDIGITS):
            raise CalculatorError(f"round takes a whole number of digits from -{_MAX_NDIGITS} to {_MAX_NDIGITS}")
        try:
            return _check(fn(*(int(a) if fn is math.factorial else a for a in args)))
        except (ValueError, TypeError) as exc:
            raise CalculatorError(f"{node.func.id}: {exc}") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    raise CalculatorError(f"unsupported syntax: {type(node).__name__}")


def evaluate(expression: str) -> float | int:
    """The numeric value of an arithmetic expression (``^`` is a power)."""
    text = str(expression).strip()
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    text = _THOUSANDS.sub("", text)
    if text.endswith("="):
        text = text[:-1].strip()
    if not text:
        raise CalculatorError("empty expression")
    if len(text) > _MAX_LENGTH:
        raise CalculatorError(f"the expression is longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"cannot parse {expression!r} as arithmetic") from None
    try:
        return _eval(tree)
    except RecursionError:  # 500 characters of "-" or "(" nest deeper than a busy stack allows
        raise CalculatorError("the expression is nested too deeply") from None


def _format(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def calculate(expression: str) -> str:
    """The tool's observation: the formatted result or a one-line error."""
    try:
        return _format(evaluate(expression))
    except CalculatorError as exc:
        return f"Calculator error: {exc}."
