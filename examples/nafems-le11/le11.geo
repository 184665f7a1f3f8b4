// NAFEMS LE11 (solid cylinder/taper/sphere, temperature loading): one quarter of the body of
// revolution, made by revolving its (r, z) section about the z axis by 90 degrees.
// Section: bottom A(1, 0)-B(1.4, 0); outer sphere R = 1.4 from B to D (30 deg); taper D-G;
// outer cylinder r = 1 from G (z = 1.39) to I (z = 1.79); top I-H; inner cylinder r = 1/sqrt(2)
// from H down to E (45 deg on the inner sphere); inner sphere R = 1 from E back to A.
// Regenerate: gmsh -3 -order 2 -format msh41 le11.geo -o le11.msh
lc = 0.09;
Point(1) = {1.0, 0, 0, lc};                       // A
Point(2) = {1.4, 0, 0, lc};                       // B
Point(3) = {1.4 * Cos(Pi / 6), 0, 0.7, lc};       // D
Point(4) = {1.0, 0, 1.39, lc};                    // G
Point(5) = {1.0, 0, 1.79, lc};                    // I
Point(6) = {Sqrt(0.5), 0, 1.79, lc};              // H
Point(7) = {Sqrt(0.5), 0, Sqrt(0.5), lc};         // E
Point(8) = {0, 0, 0, lc};                         // centre of both spheres
Line(1) = {1, 2};
Circle(2) = {2, 8, 3};
Line(3) = {3, 4};
Line(4) = {4, 5};
Line(5) = {5, 6};
Line(6) = {6, 7};
Circle(7) = {7, 8, 1};
Curve Loop(1) = {1, 2, 3, 4, 5, 6, 7};
Plane Surface(1) = {1};
out[] = Extrude {{0, 0, 1}, {0, 0, 0}, Pi / 2} { Surface{1}; };
Physical Volume("body") = {out[1]};
Physical Surface("sym_y") = {1};
Physical Surface("sym_x") = {out[0]};
Physical Surface("bottom") = {out[2]};
Physical Surface("top") = {out[6]};
Physical Surface("curved") = {out[3], out[4], out[5], out[7], out[8]};
Mesh.ElementOrder = 2;
