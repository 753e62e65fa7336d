-- Keep a held lock alive in ONE autocommit statement (psycopg placeholders), as
-- TaskStore.extend: locked_until = now + the lease, fenced by the token (a held task: locked or
-- expired) and the consumer's task types, a `lock_extended` event. No row back means "not
-- done": the caller asks why (the sync store).
WITH extended AS (
    UPDATE tasks AS t
    SET status = 'locked',
        locked_until = %(locked_until)s,
        version = t.version + 1,
        updated_at = %(now)s,
        updated_by = %(actor)s
    WHERE t.id = %(id)s
      AND t.lock_token = %(token)s
      AND t.status IN ('locked', 'expired')
      AND (CAST(%(task_types)s AS text[]) IS NULL OR t.task_type = ANY(CAST(%(task_types)s AS text[])))
    RETURNING {columns}
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'lock_extended', %(actor)s, %(now)s,
           jsonb_build_object('locked_until', CAST(%(locked_until_text)s AS text))
    FROM extended
)
SELECT * FROM extended
