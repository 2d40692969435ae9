"""make lint's plpgsql_check pass (tests/lint_sql.py) names a broken function and nothing else."""
from tests.lint_sql import check


def test_the_sql_lint_names_a_function_that_reads_a_missing_column(mdb, mdb_dsn, movies):
    # movies: a tracked table, so that every trigger function has a table to be checked against.
    mdb.execute("CREATE EXTENSION plpgsql_check")
    mdb.execute("CREATE FUNCTION wlsync.broken() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN\n"
                "RETURN (SELECT count(t.no_such_column) FROM wlsync.tracked_table AS t); END $$")
    problems, functions, silenced = check(mdb_dsn)
    assert 'wlsync.broken(), line 2: error: column t.no_such_column does not exist' in problems
    assert all(problem.startswith('wlsync.broken()') for problem in problems), problems
    assert functions > 30 and silenced > 0
