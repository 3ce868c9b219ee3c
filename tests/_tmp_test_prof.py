import cProfile, pstats, time, io
from tests.test_backends import moving_rectangle
from modelserver.sam3 import Sam3Segmenter
def test_prof():
    seg=Sam3Segmenter.from_pretrained("/tmp/tiny1/tiny-sam3")
    fr=moving_rectangle(6)
    pr=cProfile.Profile(); pr.enable()
    t=time.time(); r=seg.segment(fr,["car"]); print("segment", time.time()-t)
    pr.disable(); s=io.StringIO(); pstats.Stats(pr,stream=s).sort_stats("cumulative").print_stats(25); print(s.getvalue())
