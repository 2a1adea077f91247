"""Item and user-profile text templates on small hand-made catalogues."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumenrec.data import block_clusters, from_pandas
from lumenrec.encoders import ItemTextTemplate, UserProfileTemplate, format_value
from lumenrec.errors import ConfigError, DataError


@pytest.fixture
def catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title": ["OPI Nail Lacquer", None, "  ", "Trail Boots"],
            "categories": [
                [["Beauty", "Makeup", "Nails"]],
                [["Beauty", "Skin Care"], ["Beauty", "Face"]],
                np.nan,
                ["Outdoors", "Shoes"],
            ],
            "brand": ["OPI", "Unknown", "", np.nan],
            "price": [9.5, 12.0, np.nan, 80.0],
            "item_id_extra": ["a", "b", "c", "d"],
        },
        index=pd.Index(["i1", "i2", "i3", "i4"], name="item_id"),
    )


def test_item_text_default_fields(catalog):
    texts = ItemTextTemplate().render(catalog)
    assert texts == [
        "title: OPI Nail Lacquer. categories: Beauty > Makeup > Nails. brand: OPI",
        "categories: Beauty > Skin Care; Beauty > Face. brand: Unknown",
        "",
        "title: Trail Boots. categories: Outdoors, Shoes",
    ]


def test_item_text_options(catalog):
    tpl = ItemTextTemplate(
        fields=["brand", "title", "price"], with_names=False, separator=" | ", names=None
    )
    assert tpl.fields == ("brand", "title", "price")
    assert tpl.render(catalog) == [
        "OPI | OPI Nail Lacquer | 9.5",
        "Unknown | 12",
        "",
        "Trail Boots | 80",
    ]
    named = ItemTextTemplate(fields=["title", "item_id_extra"], names={"title": "Name"})
    assert named.render(catalog)[0] == "Name: OPI Nail Lacquer. item id extra: a"


def test_item_text_field_errors(catalog):
    with pytest.raises(DataError, match=r"no column\(s\) \['description'\].*available"):
        ItemTextTemplate(fields=["title", "description"]).render(catalog)
    with pytest.raises(ConfigError):
        ItemTextTemplate(fields="title")
    with pytest.raises(ConfigError):
        ItemTextTemplate(fields=[])
    with pytest.raises(DataError, match="none of the default"):
        ItemTextTemplate().render(catalog[["price"]])


def test_item_text_uses_catalog_attrs_and_datasets():
    data = block_clusters(n_topics=2, n_users=10, n_items=6, random_state=0)
    texts = ItemTextTemplate(fields=["title", "topic"]).render(data)
    assert len(texts) == data.n_items
    for item_id, text in zip(data.items.ids, texts, strict=True):
        row = data.catalog.loc[item_id]
        assert text == f"title: {row['title']}. topic: {row['topic']}"
    cat = data.catalog.copy()
    cat.attrs["text_fields"] = ["description"]
    assert ItemTextTemplate().render(cat)[0].startswith("description: A ")


def test_format_value():
    assert format_value(float("nan")) is None
    assert format_value(pd.NA) is None
    assert format_value(3.0) == "3"
    assert format_value(np.int64(7)) == "7"
    assert format_value(np.array(["a", "b"], dtype=object)) == "a, b"
    assert format_value([]) is None
    assert format_value([["A", "B"], ["C"]]) == "A > B; C"


@pytest.fixture
def movie_data():
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u2", "u1", "u3"],
            "item_id": ["m1", "m2", "m3", "m2", "m1", "m4", "m9"],
            "timestamp": [10, 30, 20, 40, 5, 50, 1],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["m1", "m2", "m3", "m4", "m9"],
            "title": ["Toy Story", "Heat", "Fargo", None, "Alien"],
        }
    )
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "age": [25, 31, np.nan],
            "gender": ["F", "M", None],
            "zip_id": ["x", "y", "z"],
        }
    )
    return from_pandas(events, items=items, users=users)


def test_user_profile_recent_by_time(movie_data):
    profiles = UserProfileTemplate(n_recent=3).render(movie_data)
    # u1 by time: m1(10) m3(20) m2(30) m2(40) m4(50, no title) -> newest first, unique, titled
    assert profiles == [
        "age: 25. gender: F. recently: Heat; Fargo; Toy Story",
        "age: 31. gender: M. recently: Toy Story",
        "recently: Alien",
    ]
    assert UserProfileTemplate(n_recent=1).render(movie_data, [0]) == [
        "age: 25. gender: F. recently: Heat"
    ]


def test_user_profile_options(movie_data):
    tpl = UserProfileTemplate(attributes=["gender"], n_recent=2, with_names=False, separator=" / ")
    assert tpl.render(movie_data, users=np.array([1, 0])) == ["M / Toy Story", "F / Heat; Fargo"]
    assert UserProfileTemplate(attributes=[], n_recent=0).render(movie_data) == ["", "", ""]
    assert UserProfileTemplate(n_recent=0, names={"age": "Age"}).render(movie_data, [0]) == [
        "Age: 25. gender: F"
    ]


def test_user_profile_event_order_without_timestamps():
    events = pd.DataFrame({"user_id": ["a", "a", "a"], "item_id": ["x", "y", "z"]})
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]})
    data = from_pandas(events, items=items)
    assert UserProfileTemplate(n_recent=2).render(data) == ["recently: Z; Y"]


def test_user_profile_errors(movie_data):
    with pytest.raises(DataError, match="no column 'name'"):
        UserProfileTemplate(title_field="name").render(movie_data)
    with pytest.raises(DataError, match=r"no column\(s\) \['income'\]"):
        UserProfileTemplate(attributes=["income"]).render(movie_data)
    with pytest.raises(DataError, match=r"\[0, 3\)"):
        UserProfileTemplate().render(movie_data, [3])
    with pytest.raises(DataError, match="int indices"):
        UserProfileTemplate().render(movie_data, ["u1"])
    with pytest.raises(ConfigError):
        UserProfileTemplate(n_recent=-1)
    with pytest.raises(ConfigError):
        UserProfileTemplate(attributes="age")
    no_catalog = from_pandas(pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}))
    with pytest.raises(DataError, match="no item catalogue"):
        UserProfileTemplate().render(no_catalog)


def test_render_histories_for_users_outside_a_dataset():
    catalog = pd.DataFrame({"item_id": ["m1", "m2", "m3"], "title": ["Toy Story", "Heat", "Fargo"]})
    tpl = UserProfileTemplate(n_recent=2)
    out = tpl.render_histories(
        [["m1", "m2", "m3"], ["m2", "unknown", "m2"], []],
        catalog=catalog,
        attributes=[{"age": 25, "gender": "F"}, {"age": 40}, {}],
    )
    assert out == [
        "age: 25. gender: F. recently: Fargo; Heat",
        "age: 40. recently: Heat",
        "",
    ]
    with pytest.raises(DataError, match="2 rows but there are 3"):
        tpl.render_histories([[], [], []], catalog=catalog, attributes=[{}, {}])
