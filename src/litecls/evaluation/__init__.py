"""Measure models on this machine: top-k accuracy, latency like ``benchmark_model``, op delegation,
and a zoo-wide report with a model recommendation."""

from __future__ import annotations

from litecls.evaluation.accuracy import EvaluationResult, evaluate, evaluate_model
from litecls.evaluation.benchmark import BenchmarkResult, benchmark_model, parse_threads
from litecls.evaluation.choice import choose
from litecls.evaluation.dataset import LabelledSet, LabelMatcher, load_labelled, sample_set
from litecls.evaluation.machine import MachineInfo, machine_info, measure_peak_gflops
from litecls.evaluation.ops import DelegationReport, delegation_of, profile_ops
from litecls.evaluation.report import ZooReport, build_report, load_report
from litecls.evaluation.stats import LatencyStats, summarize

__all__ = ["BenchmarkResult", "DelegationReport", "EvaluationResult", "LabelMatcher", "LabelledSet",
           "LatencyStats", "MachineInfo", "ZooReport", "benchmark_model", "build_report", "choose",
           "delegation_of", "evaluate", "evaluate_model", "load_labelled", "load_report", "machine_info",
           "measure_peak_gflops", "parse_threads", "profile_ops", "sample_set", "summarize"]
