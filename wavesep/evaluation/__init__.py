"""SiSEC-style evaluation: separate or load estimates, score with BSS Eval v4, report."""
