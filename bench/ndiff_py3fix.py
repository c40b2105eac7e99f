#!/usr/bin/env python3
"""Runs the installed ndiff (the `ndiff` module /usr/bin/ndiff runs) with one Python 3 bug
worked around, for bench/scans.sh to time ndiff's text output where the stock one fails.

    /usr/bin/python3 ndiff_py3fix.py [ndiff's options] A.xml B.xml   (ndiff's own interpreter)

ndiff's text output fails with "TypeError: '>' not supported between instances of 'list'
and 'int'" on the first port whose only change is its script output: PortDiff's
append_to_port_table tests `self.script_result_diffs > 0`, a list against 0, which Python 2
allowed (and found true) and Python 3 rejects. Here that list answers `> 0` as a list's
length would; nothing else changes (ndiff 7.93 and nmap's master as of 2026 have the bug;
its --xml output never reaches that test). The cost: one more list per port compared.
"""
import sys

try:
    import ndiff
except ImportError:  # run by another Python than ndiff's own (scans.sh uses ndiff's shebang)
    sys.path.append("/usr/lib/python3/dist-packages")
    import ndiff


class ScriptResultDiffs(list):
    def __gt__(self, other):
        if isinstance(other, int):
            return len(self) > other
        return list.__gt__(self, other)


_diff_lists = ndiff.ScriptResultDiff.diff_lists
ndiff.ScriptResultDiff.diff_lists = staticmethod(lambda a, b: ScriptResultDiffs(_diff_lists(a, b)))

if __name__ == "__main__":
    sys.excepthook = ndiff.excepthook
    sys.exit(ndiff.main())
