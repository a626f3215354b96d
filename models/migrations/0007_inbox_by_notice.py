from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0006_checks')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='InboxItem',
            name=None,
            fields=['member_id', 'id'],
        ),
        ops.AddIndex(
            model_name='InboxItem',
            index=Index(fields=['member_id', 'notice_id']),
        ),
    ]
