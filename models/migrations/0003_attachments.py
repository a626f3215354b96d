from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.org import Role


class Migration(migrations.Migration):
    dependencies = [('models', '0002_funds')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AttachmentRef',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(max_length=64)),
                ('ref_type', fields.CharField(max_length=32)),
                ('ref_id', fields.IntField()),
            ],
            options={'table': 'attachment_ref', 'app': 'models', 'unique_together': (('key', 'ref_type', 'ref_id'),), 'indexes': [Index(fields=['key'])], 'pk_attr': 'id', 'table_description': 'A stored file attached to something: a notice, a ledger line, a supervision item or'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Upload',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(description='SHA-256 of the content: the stored file', max_length=64)),
                ('name', fields.CharField(max_length=128)),
                ('content_type', fields.CharField(max_length=127)),
                ('size', fields.BigIntField()),
                ('uploaded_by', fields.ForeignKeyField('models.Member', source_field='uploaded_by_id', db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.CASCADE)),
                ('unit_id', fields.IntField(null=True, description="the uploader's unit then: its admins may cite it")),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'upload', 'app': 'models', 'unique_together': (('key', 'uploaded_by'),), 'indexes': [Index(fields=['key'])], 'pk_attr': 'id', 'table_description': "One person's upload of a stored file (the same bytes uploaded twice are one file, two rows)."},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='Member',
            name='role',
            field=fields.CharEnumField(default=Role.MEMBER, description='MEMBER: member\nUNIT_ADMIN: unit_admin\nCOMMITTEE: committee\nLIAISON: liaison', enum_type=Role, max_length=16),
        ),
    ]
