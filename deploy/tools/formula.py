"""Evaluate a KEDA scaling-modifiers formula: the subset of expr-lang our formulas use.

Numbers, trigger names, `+ - * /`, comparisons, `&&`, `||`, `!`, parentheses and the ternary
`cond ? a : b` (right-associative, lowest precedence), as expr-lang defines them. Anything else
is a FormulaError, so a formula the simulator cannot read never passes for one it did.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping

TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(&&|\|\||[<>=!]=|[-+*/()<>?:!]))"
)
BINARY: list[dict[str, Callable[[float, float], float | bool]]] = [
    {"||": lambda a, b: bool(a) or bool(b)},
    {"&&": lambda a, b: bool(a) and bool(b)},
    {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    },
    {"+": operator.add, "-": operator.sub},
    {"*": operator.mul, "/": operator.truediv},
]


class FormulaError(ValueError):
    pass


def tokenize(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if not match:
            raise FormulaError(f"cannot read {text[position:]!r}")
        tokens.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], names: Mapping[str, float]) -> None:
        self.tokens, self.position, self.names = tokens, 0, names

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise FormulaError(f"expected {expected or 'more'}, found {token!r}")
        self.position += 1
        return token

    def ternary(self) -> float | bool:
        condition = self.binary(0)
        if self.peek() != "?":
            return condition
        self.take("?")
        if_true = self.ternary()
        self.take(":")
        if_false = self.ternary()
        return if_true if condition else if_false

    def binary(self, level: int) -> float | bool:
        if level == len(BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in BINARY[level]:
            op = BINARY[level][self.take()]
            left = op(left, self.binary(level + 1))
        return left

    def unary(self) -> float | bool:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "!":
            self.take()
            return not self.unary()
        return self.primary()

    def primary(self) -> float | bool:
        token = self.take()
        if token == "(":
            value = self.ternary()
            self.take(")")
            return value
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return float(token)
        if re.fullmatch(r"[A-Za-z_]\w*", token):
            if token not in self.names:
                raise FormulaError(f"no trigger named {token!r}")
            return self.names[token]
        raise FormulaError(f"unexpected {token!r}")


def names_in(formula: str) -> set[str]:
    return {t for t in tokenize(formula) if re.fullmatch(r"[A-Za-z_]\w*", t)}


def evaluate(formula: str, names: Mapping[str, float]) -> float:
    parser = _Parser(tokenize(formula), names)
    value = parser.ternary()
    if parser.peek() is not None:
        raise FormulaError(f"unexpected {parser.peek()!r}")
    return float(value)
