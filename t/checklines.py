# The check lines the Python halves of the MySQL TAP tests print, one per
# check, for their Perl half to turn into TAP tests: "ok - what", or
# "not ok - what: why". Imported by t/mysql_*.py (they run from t/).
def say(ok, what, why=""):
    print(("ok - " if ok else "not ok - ") + what + ("" if ok else ": " + why), flush=True)


def check(what, got, want):
    say(got == want, what, "got %r, want %r" % (got, want))
