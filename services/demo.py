"""The demo city: 10 zones, ~100 units of 8-10 each, ~5,000 members, staff and liaisons, and a
lived-in current year (services/demo_year.py).

Deterministic (seeded), so loading it twice changes nothing: the second load finds the city
and only makes sure last, this and next year's rotations and the staff accounts exist. The
first load writes the city and its year in one transaction: a load that fails leaves nothing.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tortoise.transactions import in_transaction

from models.org import Liaison, Member, Role, RotationPlan, Unit, Zone
from services import clock, demo_year, rotations
from services.auth import hash_password

ZONE_NAMES = ["第一", "第二", "第三", "第四", "第五", "第六", "第七", "第八", "第九", "第十"]
AGENCIES = [
    "发展和改革委员会", "教育局", "科学技术局", "工业和信息化局", "公安局", "民政局", "司法局",
    "财政局", "人力资源和社会保障局", "自然资源和规划局", "生态环境局", "住房和城乡建设局",
    "交通运输局", "水利局", "农业农村局", "商务局", "文化广电旅游局", "卫生健康委员会",
    "退役军人事务局", "应急管理局", "审计局", "国有资产监督管理委员会", "市场监督管理局",
    "体育局", "统计局", "医疗保障局", "城市管理局", "林业局", "信访局", "机关事务管理局",
    "大数据管理局", "行政审批服务局", "投资促进局", "地方金融监督管理局", "粮食和物资储备局",
    "人民防空办公室", "档案馆", "地方志办公室", "总工会", "团市委", "妇女联合会", "科学技术协会",
    "文学艺术界联合会", "社会科学界联合会", "残疾人联合会", "红十字会", "工商业联合会",
    "侨务办公室", "供销合作社", "住房公积金管理中心", "公共资源交易中心", "融媒体中心",
    "图书馆", "博物馆", "第一人民医院", "中医院", "妇幼保健院", "疾病预防控制中心",
    "第一中学", "实验中学", "职业技术学院", "广播电视大学", "气象局", "税务局", "海关",
    "邮政管理局", "烟草专卖局", "消防救援支队", "水务集团", "公交集团", "城投集团", "交投集团",
    "国投集团", "文旅集团", "农发集团", "燃气集团", "电力公司", "供热公司", "轨道交通集团",
    "建工集团", "粮食集团", "港务集团", "机场集团", "产业投资集团", "科创集团", "金融控股集团",
    "医药集团", "物流集团", "环保集团", "保安服务公司", "会展集团", "商贸集团", "旅游集团",
    "城市更新集团", "数据集团", "人才集团", "担保集团", "新闻传媒集团", "出版集团", "农商银行",
]
DISTRICTS = ["中心区", "东城区", "西城区", "南湖区", "北山区", "高新区", "经开区", "滨江区"]
NATURES = ["党政机关", "事业单位", "群团组织", "国有企业", "学校医院"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰文斌海燕晓东晨阳"

UNITS_PER_ZONE = [10, 9, 10, 8, 10, 9, 10, 10, 9, 10]  # 95 units
TARGET_MEMBERS = 5000
LIAISONS = 5


@dataclass
class DemoResult:
    loaded: bool
    zones: int
    units: int
    members: int
    admin_username: str
    admin_password: str | None
    rotations_created: int
    first_member_no: int | None  # members log in as test-demo-<n>, first..last, every n between
    last_member_no: int | None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _phone(n: int) -> str:
    return f"139{n:08d}"


async def ensure_staff(*, username: str, name: str, phone: str, password: str | None,
                       role: Role = Role.COMMITTEE) -> tuple[Member, str | None]:
    """Create a staff account if missing; returns it and the password if newly set."""
    existing = await Member.get_or_none(username=username)
    if existing is not None:
        return existing, None
    password = password or secrets.token_urlsafe(12)
    member = await Member.create(username=username, name=name, phone=phone, role=role,
                                 password_hash=hash_password(password))
    return member, password


async def load_demo(*, admin_password: str | None, seed: int = 2026) -> DemoResult:
    rng = random.Random(seed)
    year, _ = clock.quarter_of(clock.now())
    async with in_transaction():
        loaded = not await Zone.exists(name=f"{ZONE_NAMES[0]}网络区")
        if loaded:
            await _load_city(rng)
        new_password = await _ensure_staff(admin_password)
        created = 0
        for y in (year - 1, year, year + 1):  # in order: the duty order runs on across years
            created += (await rotations.generate_rotations(year=y))["created"]
        if loaded:
            await demo_year.load_year(seed=seed)
            # Last and this year's plans were confirmed in their time; next year's is left to the
            # worker's daily plan_ahead, which tells the committee to confirm it.
            admin = await Member.get(username="admin")
            await RotationPlan.bulk_create([
                RotationPlan(year=y, generated_at=clock.quarter_bounds(y, 1)[0] - timedelta(days=40),
                             confirmed_at=clock.quarter_bounds(y, 1)[0] - timedelta(days=20),
                             confirmed_by_id=admin.id) for y in (year - 1, year)])
    numbers = await member_login_range()
    return DemoResult(
        loaded=loaded, zones=await Zone.all().count(), units=await Unit.all().count(),
        members=await Member.filter(unit_id__isnull=False).count(), admin_username="admin",
        admin_password=new_password, rotations_created=created,
        first_member_no=numbers[0] if numbers else None,
        last_member_no=numbers[1] if numbers else None)


async def _ensure_staff(admin_password: str | None) -> str | None:
    """The admin and the liaisons (two zones each); the admin's password if newly generated."""
    _, new_password = await ensure_staff(username="admin", name="工委管理员", phone="13800000000",
                                         password=admin_password)
    staff_password = admin_password or new_password
    for i in range(1, LIAISONS + 1):
        staff, _ = await ensure_staff(username=f"liaison{i}", name=f"联络员{i}",
                                      phone=f"1380000{i:04d}", password=staff_password,
                                      role=Role.LIAISON)
        for zone_no in (2 * i - 1, 2 * i):  # each liaison guides two zones
            zone = await Zone.get_or_none(name=f"{ZONE_NAMES[zone_no - 1]}网络区")
            if zone is not None:
                await Liaison.get_or_create(member_id=staff.id, zone_id=zone.id)
    return new_password


async def member_login_range() -> tuple[int, int] | None:
    """(first, last) demo member number n such that every n between logs in as `test-demo-<n>`
    (an active member with openid `demo-<n>`): the unbroken run from the smallest number."""
    openids = await Member.filter(role=Role.MEMBER, is_active=True, openid__startswith="demo-") \
        .values_list("openid", flat=True)
    numbers = sorted(int(o[5:]) for o in openids if o[5:].isdigit())
    if not numbers:
        return None
    last = numbers[0]
    for n in numbers[1:]:
        if n != last + 1:
            break
        last = n
    return numbers[0], last


@dataclass(frozen=True)
class DemoUnit:
    zone_no: int  # 0..9, the zone in ZONE_NAMES order
    name: str
    district: str
    nature: str
    member_count: int
    strength: int
    invite_code: str


def demo_units(rng: random.Random) -> list[DemoUnit]:
    """The demo city's units, zone by zone (pure: bench/partition.py measures this city)."""
    weights = [rng.randint(20, 90) for _ in range(sum(UNITS_PER_ZONE))]
    scale = TARGET_MEMBERS / sum(weights)
    units: list[DemoUnit] = []
    for z, count in enumerate(UNITS_PER_ZONE):
        for _ in range(count):
            unit_no = len(units)
            units.append(DemoUnit(
                zone_no=z, name=f"市{AGENCIES[unit_no]}党委", district=rng.choice(DISTRICTS),
                nature=NATURES[0] if unit_no < 40 else rng.choice(NATURES),
                member_count=max(8, round(weights[unit_no] * scale)),
                strength=rng.randint(45, 98), invite_code=f"DEMO{unit_no + 1:04d}"))
    return units


async def _load_city(rng: random.Random) -> None:
    specs = demo_units(rng)
    async with in_transaction():
        zone_ids: list[int] = []
        for z in range(len(UNITS_PER_ZONE)):
            zone = await Zone.create(name=f"{ZONE_NAMES[z]}网络区",
                                     description=f"{DISTRICTS[z % len(DISTRICTS)]}及周边单位")
            zone_ids.append(zone.id)
        await Unit.bulk_create([
            Unit(name=u.name, zone_id=zone_ids[u.zone_no], district=u.district, nature=u.nature,
                 member_count=u.member_count, strength=u.strength, invite_code=u.invite_code)
            for u in specs])
        units = await Unit.all().order_by("id")
        people: list[Member] = []
        n = 0
        for unit in units:
            people.append(Member(unit_id=unit.id, name=f"{unit.name[:2]}管理员{unit.id}",
                                 phone=f"137{unit.id:08d}", role=Role.UNIT_ADMIN,
                                 openid=f"demo-admin-{unit.id}"))
            for _ in range(unit.member_count):
                n += 1
                people.append(Member(
                    unit_id=unit.id,
                    name=rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2))),
                    phone=_phone(n), role=Role.MEMBER, openid=f"demo-{n}"))
        await Member.bulk_create(people, batch_size=1000)
