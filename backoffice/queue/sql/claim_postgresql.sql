-- NOT SENT BY THE PRODUCT (since #13 both the sync store and the hot path lock with
-- lock_postgresql.sql, whose `ready` CTE is this claim): kept as the claim on its own for the
-- plan tests (tests/integration/test_claim_plan.py: ordered index scan, no sort; the control
-- case with bound statuses).
-- Claim up to :limit claimable tasks of one type in one statement, and log a `locked` event
-- for each. Status values are SQL literals, never bound parameters: the generic plan psycopg
-- switches to after a few executions can only use the partial claim index when the planner
-- sees the literal predicate (measured: 13x slower with bound statuses).
WITH next AS (
    SELECT id
    FROM tasks
    WHERE task_type = :task_type
      AND status IN ('pending', 'expired')
      AND available_at <= :now
    -- exactly the claim index's column order: an ordered index scan, no sort
    ORDER BY priority, available_at, id
    LIMIT :limit
    -- a row another claimer holds is skipped, not waited for: no task is handed out twice
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE tasks AS t
    SET status = 'locked',
        lock_token = gen_random_uuid(),
        lock_date = :now,
        locked_until = :locked_until,
        locked_by = :actor,
        attempts = t.attempts + 1,
        first_locked_at = COALESCE(t.first_locked_at, :now),
        version = t.version + 1,
        updated_at = :now,
        updated_by = :actor
    FROM next
    WHERE t.id = next.id
    RETURNING t.*
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'locked', :actor, :now,
           jsonb_build_object('attempt', attempts, 'locked_until', CAST(:locked_until_text AS text))
    FROM claimed
)
SELECT * FROM claimed
