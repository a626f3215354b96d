from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.funds import CampaignKind, CampaignState, Channel, ContributionStatus, RefundStatus
from models.ledger import Direction, EntryCategory, EntryStatus


class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Campaign',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(description='SPECIAL_DUES: special_dues\nDONATION: donation\nZONE_FUND: zone_fund', enum_type=CampaignKind, max_length=16)),
                ('state', fields.CharEnumField(default=CampaignState.DRAFT, description='DRAFT: draft\nOPEN: open\nCLOSED: closed', enum_type=CampaignState, max_length=8)),
                ('title', fields.CharField(max_length=128)),
                ('description', fields.TextField(default='', unique=False)),
                ('target_fen', fields.BigIntField(null=True)),
                ('zone_ids', fields.JSONField(default=list, description='audience zones, empty for the whole city', encoder=JSON_DUMPS, decoder=loads)),
                ('fund_zone_id', fields.IntField(null=True, description='zone_fund drives: the zone whose ledger gets the money')),
                ('min_amount_fen', fields.BigIntField(default=1)),
                ('max_amount_fen', fields.BigIntField(default=10000000)),
                ('starts_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_by_id', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('opened_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('settled_at', fields.DatetimeField(null=True, description='zone_fund drives: booked into the ledger (or nothing to book)', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'campaign', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CampaignTotal',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='totals', on_delete=OnDelete.CASCADE)),
                ('unit_id', fields.IntField()),
                ('zone_id', fields.IntField(null=True)),
                ('online_fen', fields.BigIntField(default=0)),
                ('online_count', fields.IntField(default=0)),
                ('offline_fen', fields.BigIntField(default=0)),
                ('offline_count', fields.IntField(default=0)),
                ('refunded_fen', fields.BigIntField(default=0)),
                ('refund_count', fields.IntField(default=0)),
            ],
            options={'table': 'campaign_total', 'app': 'models', 'unique_together': (('campaign_id', 'unit_id'),), 'pk_attr': 'id', 'table_description': 'Running totals of one unit in one drive, moved in the transaction that moves the money.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Contribution',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='contributions', on_delete=OnDelete.RESTRICT)),
                ('member_id', fields.IntField(null=True, description='the payer, when a member')),
                ('unit_id', fields.IntField()),
                ('zone_id', fields.IntField(null=True, description='the unit zone when the contribution was made')),
                ('channel', fields.CharEnumField(description='WECHAT: wechat\nCASH: cash\nBANK_TRANSFER: bank_transfer', enum_type=Channel, max_length=16)),
                ('status', fields.CharEnumField(description='PENDING: pending\nPAID: paid\nCLOSED: closed\nFLAGGED: flagged\nREFUNDED: refunded', enum_type=ContributionStatus, max_length=16)),
                ('amount_fen', fields.BigIntField(description='negative only on a reversing entry')),
                ('idempotency_key', fields.CharField(null=True, max_length=64)),
                ('out_trade_no', fields.CharField(null=True, unique=True, max_length=32)),
                ('openid', fields.CharField(null=True, max_length=64)),
                ('prepay_id', fields.CharField(null=True, max_length=64)),
                ('transaction_id', fields.CharField(null=True, unique=True, max_length=32)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('next_check_at', fields.DatetimeField(null=True, description='pending orders: next query at WeChat Pay', auto_now=False, auto_now_add=False)),
                ('checks', fields.IntField(default=0)),
                ('refunded_fen', fields.BigIntField(default=0)),
                ('refund_reserved_fen', fields.BigIntField(default=0, description='refunds requested, not yet ended')),
                ('flag_reason', fields.CharField(default='', max_length=32)),
                ('flag_detail', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('payer_name', fields.CharField(default='', max_length=64)),
                ('receipt_no', fields.CharField(null=True, max_length=64)),
                ('received_on', fields.DateField(null=True)),
                ('note', fields.TextField(default='', unique=False)),
                ('recorded_by_id', fields.IntField(null=True)),
                ('reverses_id', fields.IntField(null=True, unique=True, description='the entry this one reverses')),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'contribution', 'app': 'models', 'unique_together': (('member_id', 'idempotency_key'), ('campaign_id', 'unit_id', 'receipt_no')), 'indexes': [Index(fields=['campaign_id', 'status']), Index(fields=['member_id', 'status']), Index(fields=['status', 'next_check_at'])], 'pk_attr': 'id', 'table_description': 'One order paid through WeChat Pay, or one offline entry recorded by a unit admin.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FundEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', db_constraint=True, to_field='id', related_name='fund_entries', on_delete=OnDelete.RESTRICT)),
                ('direction', fields.CharEnumField(description='INCOME: income\nEXPENSE: expense', enum_type=Direction, max_length=8)),
                ('category', fields.CharEnumField(description='DUTY_UNIT: duty_unit\nMEMBER_UNIT: member_unit\nCOMMITTEE_SUBSIDY: committee_subsidy\nCAMPAIGN: campaign\nOTHER_INCOME: other_income\nVENUE_RENT: venue_rent\nMATERIALS: materials\nEVENT_COSTS: event_costs\nOTHER_EXPENSE: other_expense', enum_type=EntryCategory, max_length=24)),
                ('status', fields.CharEnumField(default=EntryStatus.BOOKED, description='PENDING: pending\nBOOKED: booked\nREJECTED: rejected', enum_type=EntryStatus, max_length=8)),
                ('amount_fen', fields.BigIntField(description='negative only on a reversing line')),
                ('unit_id', fields.IntField(null=True, description='the paying unit of duty_unit and member_unit income')),
                ('campaign_id', fields.IntField(null=True, unique=True)),
                ('description', fields.CharField(max_length=200)),
                ('attachments', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('occurred_on', fields.DateField()),
                ('idempotency_key', fields.CharField(null=True, max_length=64)),
                ('recorded_by_id', fields.IntField()),
                ('decided_by_id', fields.IntField(null=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decision_note', fields.CharField(default='', max_length=200)),
                ('reverses_id', fields.IntField(null=True, unique=True)),
                ('booked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'fund_entry', 'app': 'models', 'unique_together': (('zone_id', 'idempotency_key'),), 'indexes': [Index(fields=['zone_id', 'status', 'booked_at'])], 'pk_attr': 'id', 'table_description': 'One line of a zone fund ledger. Booked lines are never changed: a correction is a line'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Refund',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('contribution', fields.ForeignKeyField('models.Contribution', source_field='contribution_id', db_constraint=True, to_field='id', related_name='refunds', on_delete=OnDelete.RESTRICT)),
                ('out_refund_no', fields.CharField(unique=True, max_length=64)),
                ('refund_id', fields.CharField(null=True, unique=True, max_length=32)),
                ('amount_fen', fields.BigIntField()),
                ('reason', fields.CharField(default='', max_length=80)),
                ('status', fields.CharEnumField(default=RefundStatus.PROCESSING, description='PROCESSING: processing\nSUCCESS: success\nCLOSED: closed\nABNORMAL: abnormal\nFAILED: failed', enum_type=RefundStatus, max_length=16)),
                ('idempotency_key', fields.CharField(null=True, max_length=64)),
                ('requested_by_id', fields.IntField()),
                ('next_check_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'refund', 'app': 'models', 'unique_together': (('contribution_id', 'idempotency_key'),), 'indexes': [Index(fields=['status', 'next_check_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
