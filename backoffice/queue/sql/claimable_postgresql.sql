-- Would a lock call of this type get a task now? The long-poll ticker's one read per type and
-- interval (listener.py): a claimable task (the claim index) or a run-out lock (the expiry index).
(SELECT 1 FROM tasks
 WHERE task_type = %(task_type)s AND status IN ('pending', 'expired') AND available_at <= %(now)s
 LIMIT 1)
UNION ALL
(SELECT 1 FROM tasks
 WHERE task_type = %(task_type)s AND status = 'locked' AND locked_until <= %(now)s
 LIMIT 1)
LIMIT 1
