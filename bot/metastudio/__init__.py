"""Huawei Cloud MetaStudio: models, request signing, authentication and the async client."""
