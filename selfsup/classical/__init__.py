"""The chapter's classical transfer (§6.1): sparse dictionaries learned with scikit-learn.

No Lightning and no gradient here: a dictionary is learned by alternating sparse coding
and dictionary updates on unlabelled data, then turned into features by sparse coding.
"""
