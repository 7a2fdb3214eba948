"""The daily route optimiser: plain-data problem in, timed routes out (see docs/routing.md)."""

from engine.routing.problem import Answer, Problem, problem_from_json
from engine.routing.solver import solve

__all__ = ["Answer", "Problem", "problem_from_json", "solve"]
