// NAFEMS T4 plate, 0.6 x 1.0 m, unstructured triangles; point E = (0.6, 0.2) is a mesh node.
h = 0.015;
Point(1) = {0, 0, 0, h}; Point(2) = {0.6, 0, 0, h}; Point(3) = {0.6, 0.2, 0, h};
Point(4) = {0.6, 1.0, 0, h}; Point(5) = {0, 1.0, 0, h};
Line(1) = {1, 2}; Line(2) = {2, 3}; Line(3) = {3, 4}; Line(4) = {4, 5}; Line(5) = {5, 1};
Curve Loop(1) = {1, 2, 3, 4, 5};
Plane Surface(1) = {1};
Physical Surface("domain") = {1};
Physical Curve("ymin") = {1};
Physical Curve("xmax") = {2, 3};
Physical Curve("ymax") = {4};
Physical Curve("xmin") = {5};
