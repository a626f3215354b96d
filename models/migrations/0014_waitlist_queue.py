"""The waitlist as stored numbers: each activity counts the numbers it gave (queue_seq), each
waitlisted sign-up keeps its own, so the sign-up reads its place from the statement that wrote it
instead of counting. Waitlisted rows already there are numbered in their queue order."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0012_practice')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Activity',
            name='queue_seq',
            field=fields.IntField(default=0, description='the last waitlist number given (Signup.queue_seq)'),
        ),
        ops.AddField(
            model_name='Signup',
            name='queue_seq',
            field=fields.IntField(null=True, description="waitlist order, numbered by the activity's counter when queued"),
        ),
        ops.AddIndex(
            model_name='Signup',
            index=Index(fields=['activity_id', 'status', 'queue_seq']),
        ),
        ops.RunSQL([
            "UPDATE signup SET queue_seq = (SELECT COUNT(*) FROM signup s2 "
            "WHERE s2.activity_id = signup.activity_id AND s2.status = 'waitlisted' "
            "AND (s2.queued_at < signup.queued_at OR (s2.queued_at = signup.queued_at AND s2.id <= signup.id))) "
            "WHERE status = 'waitlisted'",
            "UPDATE activity SET queue_seq = COALESCE((SELECT MAX(s.queue_seq) FROM signup s "
            "WHERE s.activity_id = activity.id), 0)",
        ], reverse_sql=[]),
    ]
