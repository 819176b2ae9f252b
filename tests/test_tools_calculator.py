"""Safe arithmetic: correct values, no code execution, guards against huge work."""

import inspect
import math
import sys
import time

import pytest

from autoact.tools.calculator import CalculatorError, calculate, evaluate


@pytest.mark.parametrize(
    "expr,value",
    [
        ("1 + 2 * 3", 7),
        ("(1877 - 1802) / 5", 15),
        ("2 ^ 10", 1024),
        ("2 ** 0.5", math.sqrt(2)),
        ("-3 + +4", 1),
        ("17 // 5 + 17 % 5", 5),
        ("sqrt(16) + abs(-2)", 6),
        ("round(3.14159, 2)", 3.14),
        ("max(3, 9, 4) - min(3, 9, 4)", 6),
        ("1,234,567 + 1", 1234568),
        ("6 × 7", 42),
        ("pi * 2", 2 * math.pi),
        ("10 =", 10),
        ("factorial(5)", 120),
    ],
)
def test_values(expr, value):
    assert evaluate(expr) == pytest.approx(value)


def test_formatting():
    assert calculate("10 / 4") == "2.5"
    assert calculate("10 / 2") == "5"
    assert calculate("1 / 3") == "0.3333333333"


@pytest.mark.parametrize(
    "expr,message",
    [
        ("__import__('os').system('true')", "unsupported syntax"),
        ("__import__('os')", "unknown function"),
        ("open('/etc/passwd')", "unknown function"),
        ("(1).__class__", "unsupported syntax"),
        ("x + 1", "unknown name"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "too large"),
        ("factorial(100000)", "factorial"),
        ("'a' * 3", "only numbers"),
        ("1 +", "cannot parse"),
        ("", "empty"),
        ("sqrt(-1)", "sqrt"),
    ],
)
def test_refusals(expr, message):
    with pytest.raises(CalculatorError, match=message):
        evaluate(expr)
    assert calculate(expr).startswith("Calculator error:")


@pytest.mark.parametrize(
    "expr,message",
    [
        ("round(1, -10**18)", "whole number of digits"),  # never returned: 10**(10**18)
        ("round(10**300, -10**7)", "whole number of digits"),  # took 10 s
        ("round(1.5, 10**18)", "whole number of digits"),
        ("round(2.5, 1.5)", "whole number of digits"),
        ("(10**300) ** 10000", "too large"),  # a 3-million-digit integer, 1.7 s
        ("7 ** 9999", "too large"),
    ],
)
def test_huge_work_is_refused_before_it_is_done(expr, message):
    with pytest.raises(CalculatorError, match=message):
        evaluate(expr)


def test_the_reported_hangs_come_back_quickly_with_an_error():
    start = time.perf_counter()
    answers = [calculate("round(1, -10**18)"), calculate("round(10**300, -10**7)")]
    assert time.perf_counter() - start < 2.0
    assert all(a.startswith("Calculator error: round takes a whole number of digits") for a in answers)


def test_bounds_leave_ordinary_rounding_and_powers_alone():
    assert evaluate("round(123456, -3)") == 123000
    assert evaluate("round(2.675, 300)") == 2.675
    assert evaluate("2 ** 996") == 2**996  # the largest power of two under 10**300
    assert evaluate("(-3) ** 3") == -27 and evaluate("2 ** -3") == 0.125


def test_deep_nesting_on_a_busy_stack_is_an_error_not_a_crash():
    expr = "-" * 400 + "1"
    assert evaluate(expr) == 1
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 200)  # as if called deep inside a graph run
    try:
        with pytest.raises(CalculatorError, match="nested too deeply"):
            evaluate(expr)
    finally:
        sys.setrecursionlimit(limit)
