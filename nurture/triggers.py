"""The database trigger that enrols an RPH lead when its status becomes "nurture_p2" and stops
its enrollment when the status moves on. A trigger, because leads change status in many ways
(the admin, forms, QuerySet.update, imports, raw SQL) and only the database sees them all.

The enrollment counts from the status change: the row's own `status_changed_at` when the
writer set it in the same statement (or on insert), else the database's clock. It goes into
the active sequence at its first step; with no active sequence (or one without steps) nothing
happens here, and `nurture_send` enrols the lead on its next run.

SQLite drops a table's triggers when a migration rebuilds the table, so `install` runs after
every `migrate` too (see apps.py); it replaces whatever is there."""

POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION nurture_rph_status() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      moment timestamptz := NEW.status_changed_at;
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
          RETURN NULL;
        END IF;
        IF NEW.status_changed_at IS NOT DISTINCT FROM OLD.status_changed_at THEN
          moment := now();
        END IF;
        IF OLD.status = 'nurture_p2' THEN
          UPDATE nurture_enrollment
             SET status = 'stopped', next_due_at = NULL, stopped_at = moment,
                 stop_reason = 'Left Nurture P2 (status now ' || NEW.status || ')'
           WHERE rph_id = NEW.id AND status = 'active';
        END IF;
      END IF;
      IF NEW.status = 'nurture_p2' THEN
        INSERT INTO nurture_enrollment
               (rph_id, sequence_id, step_id, enrolled_at, next_due_at, status, stop_reason,
                last_error)
        SELECT NEW.id, s.sequence_id, s.id, moment, moment + make_interval(days => s.wait_days),
               'active', '', ''
          FROM nurture_step s JOIN nurture_sequence q ON q.id = s.sequence_id
         WHERE q.active
         ORDER BY s."order", s.id
         LIMIT 1
        ON CONFLICT DO NOTHING;
      END IF;
      RETURN NULL;
    END
    $$
    """,
    "DROP TRIGGER IF EXISTS nurture_rph_status ON crm_rph",
    """
    CREATE TRIGGER nurture_rph_status AFTER INSERT OR UPDATE OF status ON crm_rph
    FOR EACH ROW EXECUTE FUNCTION nurture_rph_status()
    """,
]

_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
_SQLITE_MOMENT = (
    "CASE WHEN NEW.status_changed_at IS NOT OLD.status_changed_at "
    f"THEN NEW.status_changed_at ELSE {_SQLITE_NOW} END"
)


def _sqlite_enrol(moment: str) -> str:
    # `moment` is one of the SQL expressions of this module, never input.
    return f"""
    INSERT INTO nurture_enrollment
           (rph_id, sequence_id, step_id, enrolled_at, next_due_at, status, stop_reason,
            last_error)
    SELECT NEW.id, s.sequence_id, s.id, {moment},
           strftime('%Y-%m-%d %H:%M:%f', {moment}, '+' || s.wait_days || ' days'),
           'active', '', ''
      FROM nurture_step s JOIN nurture_sequence q ON q.id = s.sequence_id
     WHERE q.active
     ORDER BY s."order", s.id
     LIMIT 1
    ON CONFLICT DO NOTHING;
    """  # noqa: S608


SQLITE = [
    "DROP TRIGGER IF EXISTS nurture_rph_inserted",
    "DROP TRIGGER IF EXISTS nurture_rph_entered",
    "DROP TRIGGER IF EXISTS nurture_rph_left",
    f"""
    CREATE TRIGGER nurture_rph_inserted AFTER INSERT ON crm_rph
    FOR EACH ROW WHEN NEW.status = 'nurture_p2'
    BEGIN {_sqlite_enrol("NEW.status_changed_at")} END
    """,
    f"""
    CREATE TRIGGER nurture_rph_entered AFTER UPDATE OF status ON crm_rph
    FOR EACH ROW WHEN NEW.status = 'nurture_p2' AND OLD.status IS NOT 'nurture_p2'
    BEGIN {_sqlite_enrol(_SQLITE_MOMENT)} END
    """,
    f"""
    CREATE TRIGGER nurture_rph_left AFTER UPDATE OF status ON crm_rph
    FOR EACH ROW WHEN OLD.status = 'nurture_p2' AND NEW.status IS NOT 'nurture_p2'
    BEGIN
      UPDATE nurture_enrollment
         SET status = 'stopped', next_due_at = NULL, stopped_at = {_SQLITE_MOMENT},
             stop_reason = 'Left Nurture P2 (status now ' || NEW.status || ')'
       WHERE rph_id = NEW.id AND status = 'active';
    END
    """,  # noqa: S608 - our own SQL expressions, no input
]

STATEMENTS = {"postgresql": POSTGRESQL, "sqlite": SQLITE}


def install(connection) -> None:
    """(Re)create the trigger on this database."""
    with connection.cursor() as cursor:
        for statement in STATEMENTS.get(connection.vendor, []):
            cursor.execute(statement)


def uninstall(connection) -> None:
    drop = {
        "postgresql": [
            "DROP TRIGGER IF EXISTS nurture_rph_status ON crm_rph",
            "DROP FUNCTION IF EXISTS nurture_rph_status()",
        ],
        "sqlite": SQLITE[:3],
    }
    with connection.cursor() as cursor:
        for statement in drop.get(connection.vendor, []):
            cursor.execute(statement)
